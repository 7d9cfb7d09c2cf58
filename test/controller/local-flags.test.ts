// Bad flags: one line on stderr naming the flag, the value and what is expected, with its QB_* code; exit 2.
// Failures while starting (a port in use): one line on stderr too, exit 1.
import assert from 'node:assert/strict';
import { spawn as spawnChild, spawnSync } from 'node:child_process';
import net from 'node:net';
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
// Kubernetes mode's flags are checked before anything dials this server.
const KUBECONFIG = path.join(dir, 'kubeconfig');
fs.writeFileSync(KUBECONFIG, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.50.9:1"}}]\nusers: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n');

const cases: Array<{ name: string; args: string[]; env?: Record<string, string>; want: RegExp }> = [
  { name: 'a port that is not a number', args: ['--pods-file', file, '--discovery-port', 'abc'], want: /--discovery-port 'abc' is invalid: expected a port number/ },
  { name: 'a port above 65535', args: ['--pods-file', file, '--admin-port', '70000'], want: /--admin-port '70000' is invalid: expected a port number from 0 to 65535/ },
  { name: 'an unknown flag', args: ['--pods-file', file, '--bogus', '1'], want: /unknown flag '--bogus': expected one of .*--pods-file/ },
  { name: 'a missing value', args: ['--pods-file'], want: /--pods-file needs a value/ },
  { name: 'a value that is another flag', args: ['--pods-file', '--admin-port', '0'], want: /--pods-file needs a value: .*got the flag '--admin-port' next/ },
  { name: 'a bad boolean', args: ['--pods-file', file, '--leader-elect=yes'], want: /--leader-elect 'yes' is invalid: expected true or false/ },
  { name: 'a positional argument', args: ['--pods-file', file, 'extra'], want: /QB_USAGE: unexpected argument 'extra': qbasis controller takes only flags/ },
  { name: 'a pods file that does not exist', args: ['--pods-file', path.join(dir, 'nope.yaml')], want: /--pods-file '.*nope\.yaml' is invalid: expected an existing file \(ENOENT\)/ },
  { name: 'a bad log level', args: ['--pods-file', file, '--log-level', 'loud'], want: /--log-level 'loud' is invalid: expected one of trace, debug, info/ },
  { name: 'a bad value from the environment', args: ['--pods-file', file], env: { QBASIS_DISCOVERY_PORT: 'x1' }, want: /--discovery-port 'x1' \(from QBASIS_DISCOVERY_PORT\) is invalid/ },
  { name: 'a pods file that is a directory', args: ['--pods-file', dir], want: /--pods-file '.*' is invalid: expected a file, got a directory/ },
  { name: 'a certificate lifetime under 10 s', args: ['--pods-file', file, '--identity-dir', path.join(dir, 'id'), '--cert-lifetime', '5'], want: /--cert-lifetime '5' is invalid: expected seconds from 10 to 31536000/ },
  { name: 'the Kubernetes-mode root Secret in local mode', args: ['--pods-file', file, '--identity-secret', 'root'], want: /--identity-secret 'root' is for Kubernetes mode; local mode \(--pods-file\) keeps the root in --identity-dir/ },
  { name: 'an identity dir in Kubernetes mode', args: ['--kubeconfig', KUBECONFIG, '--identity-dir', path.join(dir, 'id')], want: /--identity-dir '.*' is for local mode \(--pods-file\); Kubernetes mode keeps the root in a Secret: --identity-secret <name>/ },
  { name: 'a root Secret name that is not a name', args: ['--kubeconfig', KUBECONFIG, '--identity-secret', 'Root_CA'], want: /--identity-secret 'Root_CA' is invalid: expected a Secret name/ },
  { name: 'a replica selector that would add to the URL', args: ['--kubeconfig', KUBECONFIG, '--replica-selector', 'app=x&watch=true'], want: /--replica-selector 'app=x&watch=true' is invalid: expected a label selector like app\.kubernetes\.io\/component=controller/ },
  { name: 'a trust domain that is not a DNS name', args: ['--pods-file', file, '--trust-domain', 'Cluster/Local'], want: /--trust-domain 'Cluster\/Local' is invalid: expected a trust domain such as cluster\.local/ },
];

for (const c of cases) {
  test(`controller refuses ${c.name} with one line and exit 2`, () => {
    const r = run(c.args, c.env);
    assert.equal(r.status, 2, `exit code; stderr: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
    assert.match(lines[0]!, /^qbasis controller: QB_(INVALID_FLAG|USAGE): /);
    assert.match(lines[0]!, c.want);
  });
}

test('controller --help prints its flags and exits 0', () => {
  const r = run(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--pods-file/);
  assert.match(r.stdout, /--discovery-port/);
});

// Issue 12: with neither a pods file nor any Kubernetes config, the Kubernetes client would dial
// http://localhost:8080 for ever; the controller says what it needs instead.
test('controller with no flags and no Kubernetes config says a pods file or a kubeconfig is needed (exit 2)', () => {
  const home = tempDir('no-kube-home');
  const env: Record<string, string> = { ...process.env, HOME: home } as Record<string, string>;
  delete env.KUBECONFIG;
  delete env.KUBERNETES_SERVICE_HOST;
  for (const k of Object.keys(env)) if (k.startsWith('QBASIS_')) delete env[k];
  const r = spawnSync(process.execPath, [QBASIS_BIN, 'controller'], { cwd: REPO, encoding: 'utf8', env, timeout: 20_000, killSignal: 'SIGKILL' });
  assert.equal(r.signal, null, 'it exits by itself (no retrying for ever)');
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    'qbasis controller: QB_INVALID_FLAG: no pod source: expected --pods-file <file> (local mode) or --kubeconfig <file> (Kubernetes mode); no $KUBECONFIG, ~/.kube/config or in-cluster service account was found either\n',
  );
});

// Issue 12: start-up errors went to stdout as a JSON log line while flag errors went to stderr.
test('controller start-up failures (a port in use) are one line on stderr and exit 1, like the sidecar', async () => {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.50.1', resolve));
  const port = (holder.address() as net.AddressInfo).port;
  try {
    for (const [what, args] of [
      ['admin HTTP', ['--admin-port', String(port), '--discovery-port', '0']],
      ['discovery', ['--admin-port', '0', '--discovery-port', String(port)]],
    ] as const) {
      const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        // Asynchronous: the port holder lives in this process.
        const child = spawnChild(process.execPath, [QBASIS_BIN, 'controller', '--pods-file', file, '--discovery-address', '127.0.50.1', ...args]);
        let stdout = '';
        let stderr = '';
        child.stdout!.on('data', (d: Buffer) => (stdout += d));
        child.stderr!.on('data', (d: Buffer) => (stderr += d));
        child.on('exit', (status) => resolve({ status, stdout, stderr }));
      });
      assert.equal(r.status, 1, `${what}: ${r.stderr}`);
      assert.equal(r.stderr, `qbasis controller: cannot serve ${what} on 127.0.50.1:${port}: listen EADDRINUSE: address already in use 127.0.50.1:${port}\n`);
      assert.doesNotMatch(r.stdout, /failed to start|EADDRINUSE|"level":60/, 'nothing about it on stdout');
    }
  } finally {
    holder.close();
  }
});

test('an --identity-dir that others can read stops the start with one line and exit 1', () => {
  const open = tempDir('identity-open');
  fs.chmodSync(open, 0o755);
  const r = run(['--pods-file', file, '--identity-dir', open, '--discovery-address', '127.0.50.2', '--discovery-port', '0', '--identity-port', '0', '--admin-port', '0']);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^qbasis controller: cannot use --identity-dir .*: .* is accessible by other users \(mode 755\); expected 700 \(chmod 700 /);
});
