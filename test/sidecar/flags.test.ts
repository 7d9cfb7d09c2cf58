// `qbasis sidecar` with a bad flag or environment value: exactly one line on stderr naming the flag, the
// value and what is expected; exit code 2; no stack trace. Nothing binds (no addresses used).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { QBASIS_BIN, REPO } from '../fixtures/local-controller.ts';

const OK = ['--ip', '127.0.44.1', '--discovery', '127.0.44.1:15010', '--app-port', '50051'];

function run(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stderr: string; stdout: string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QBASIS_')));
  const r = spawnSync(process.execPath, [QBASIS_BIN, 'sidecar', ...args], { cwd: REPO, env: { ...clean, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

const cases: { name: string; args: string[]; env?: NodeJS.ProcessEnv; expect: RegExp }[] = [
  { name: 'an unknown flag', args: [...OK, '--frobnicate', 'x'], expect: /unknown flag '--frobnicate': expected one of .*--app-port/ },
  { name: 'a port that is not a number', args: ['--ip', '127.0.44.1', '--discovery', '127.0.44.1:15010', '--app-port', 'http'], expect: /invalid --app-port 'http': expected a port number from 1 to 65535/ },
  { name: 'a port out of range', args: [...OK, '--admin-port', '70000'], expect: /invalid --admin-port '70000': expected a port number from 1 to 65535/ },
  { name: 'a missing required flag', args: ['--ip', '127.0.44.1', '--app-port', '50051'], expect: /invalid --discovery '': expected host:port of the controller \(flag or QBASIS_DISCOVERY\)/ },
  { name: 'a bad --ip', args: ['--ip', 'localhost:80', '--discovery', '127.0.44.1:15010', '--app-port', '1'], expect: /invalid --ip 'localhost:80': expected an IPv4 or IPv6 address/ },
  { name: 'a bad --discovery', args: ['--ip', '127.0.44.1', '--discovery', '127.0.44.1', '--app-port', '1'], expect: /invalid --discovery '127\.0\.44\.1': expected host:port/ },
  { name: 'a provided version that is not semver', args: [...OK, '--provides', 'shop.orders.v1.OrderService@1.x'], expect: /invalid --provides 'shop\.orders\.v1\.OrderService@1\.x': '1\.x' .* is not a semantic version; expected .*MAJOR\.MINOR\.PATCH/ },
  { name: 'a required range that is not a range', args: [...OK, '--requires', 'shop.orders.v1.OrderService@banana'], expect: /invalid --requires 'shop\.orders\.v1\.OrderService@banana': 'banana' .* is not a semver range; expected/ },
  { name: 'a bad --outbound-host', args: [...OK, '--outbound-host', 'localhost'], expect: /invalid --outbound-host 'localhost': expected an IPv4 or IPv6 address/ },
  { name: '--app-protocol http (not implemented yet)', args: [...OK, '--app-protocol', 'http'], expect: /invalid --app-protocol 'http': expected 'grpc' \(the HTTP\/JSON gateway .* not implemented yet\)/ },
  { name: 'a bad --grace-period', args: [...OK, '--grace-period=-1'], expect: /invalid --grace-period '-1': expected seconds/ },
  { name: 'a value starting with a dash given without =', args: [...OK, '--grace-period', '-1'], expect: /invalid --grace-period: its value starts with '-'; expected --grace-period=<value>/ },
  { name: 'a bad --log-level', args: [...OK, '--log-level', 'loud'], expect: /invalid --log-level 'loud': expected one of trace/ },
  { name: 'a bad value in the environment (QBASIS_APP_PORT)', args: ['--ip', '127.0.44.1', '--discovery', '127.0.44.1:15010'], env: { QBASIS_APP_PORT: 'abc' }, expect: /invalid --app-port 'abc': expected a port number/ },
  { name: 'a positional argument', args: [...OK, 'extra'], expect: /unexpected argument 'extra'/ },
];

for (const c of cases) {
  test(`sidecar refuses ${c.name} with one line and exit 2`, () => {
    const r = run(c.args, c.env);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
    assert.match(lines[0]!, /^qbasis sidecar: /);
    assert.match(lines[0]!, c.expect);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });
}

test('sidecar --help lists every flag with its QBASIS_ form and exits 0', () => {
  const r = run(['--help']);
  assert.equal(r.code, 0);
  for (const f of ['--ip', '--discovery', '--app-port', '--provides', '--requires', '--grace-period', '--max-frame-bytes']) assert.ok(r.stdout.includes(f), f);
  assert.match(r.stdout, /QBASIS_APP_PORT/);
});
