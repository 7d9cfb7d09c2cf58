// Bad flags: one line on stderr naming the flag, the value and what is expected; exit 2.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { test } from 'node:test';
import { QBASIS_BIN, REPO, tempDir } from '../fixtures/local-controller.ts';

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [QBASIS_BIN, 'controller', ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

const dir = tempDir('flags');
const file = path.join(dir, 'pods.yaml');
fs.writeFileSync(file, 'kind: List\nitems: []\n');

const cases: Array<{ name: string; args: string[]; env?: Record<string, string>; want: RegExp }> = [
  { name: 'a port that is not a number', args: ['--pods-file', file, '--discovery-port', 'abc'], want: /--discovery-port 'abc' is invalid: expected a port number/ },
  { name: 'a port above 65535', args: ['--pods-file', file, '--admin-port', '70000'], want: /--admin-port '70000' is invalid: expected a port number from 0 to 65535/ },
  { name: 'an unknown flag', args: ['--pods-file', file, '--bogus', '1'], want: /unknown flag --bogus: expected one of .*--pods-file/ },
  { name: 'a missing value', args: ['--pods-file'], want: /--pods-file needs a value/ },
  { name: 'a pods file that does not exist', args: ['--pods-file', path.join(dir, 'nope.yaml')], want: /--pods-file '.*nope\.yaml' is invalid: expected an existing file \(ENOENT\)/ },
  { name: 'a bad log level', args: ['--pods-file', file, '--log-level', 'loud'], want: /--log-level 'loud' is invalid: expected one of trace, debug, info/ },
  { name: 'a bad value from the environment', args: ['--pods-file', file], env: { QBASIS_DISCOVERY_PORT: 'x1' }, want: /--discovery-port 'x1' is invalid/ },
  { name: 'a pods file that is a directory', args: ['--pods-file', dir], want: /--pods-file '.*' is invalid: expected a file, got a directory/ },
];

for (const c of cases) {
  test(`controller refuses ${c.name} with one line and exit 2`, () => {
    const r = run(c.args, c.env);
    assert.equal(r.status, 2, `exit code; stderr: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
    assert.match(lines[0]!, /^qbasis controller: /);
    assert.match(lines[0]!, c.want);
  });
}

test('controller --help prints its flags and exits 0', () => {
  const r = run(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--pods-file/);
  assert.match(r.stdout, /--discovery-port/);
});
