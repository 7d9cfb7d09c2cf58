// Restart one control-plane component of the test cluster in place (same binary, same flags, same
// port), e.g. the API server under a running controller. Added by the controller engineer (issue 5)
// beside the harness: it only uses the cluster's own process helpers and keeps state.json's pids
// current, so `down` still stops the new process.
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readState, type Component } from '../cluster/cluster.ts';
import { commandLine, isOurs, startDetached, stopPid } from '../cluster/processes.ts';

export interface RestartOptions {
  /** Time the component stays down before it starts again. */
  downMs?: number;
  /** SIGKILL at once instead of TERM (a crash rather than a clean stop). */
  kill?: boolean;
}

/** Stops `component` of the cluster in `stateDir`, waits `downMs`, starts it again with the same command line. */
export async function restartComponent(stateDir: string, component: Component, opts: RestartOptions = {}): Promise<number> {
  const state = readState(stateDir);
  if (state === undefined) throw new Error(`no cluster state in ${stateDir}`);
  const pid = state.pids[component];
  if (pid === undefined || !isOurs(pid, state.dir)) throw new Error(`${component} of ${stateDir} is not running`);
  const cmd = commandLine(pid);
  if (cmd === undefined || cmd.length === 0) throw new Error(`cannot read ${component}'s command line`);
  await stopPid(pid, state.dir, opts.kill === true ? 0 : 10_000);
  await sleep(opts.downMs ?? 0);
  const next = startDetached(cmd[0]!, cmd.slice(1), join(state.dir, 'logs', `${component}.log`));
  state.pids[component] = next;
  const tmp = join(state.dir, 'state.json.tmp');
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, join(state.dir, 'state.json'));
  return next;
}
