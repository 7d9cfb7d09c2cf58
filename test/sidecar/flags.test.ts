// `qbasis sidecar` with a bad flag or environment value: exactly one line on stderr naming the flag, the
// value and what is expected; exit code 2; no stack trace. Nothing binds (no addresses used).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { QBASIS_BIN, REPO } from '../fixtures/local-controller.ts';

const OK = ['--ip', '127.0.44.1', '--discovery', '127.0.44.1:15010', '--app-port', '50051'];

function run(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stderr: string; stdout: string } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QBASIS_')));
  const r = spawnSync(process.execPath, [QBASIS_BIN, 'sidecar', ...args], { cwd: REPO, env: { ...clean, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

const cases: { name: string; args: string[]; env?: NodeJS.ProcessEnv; expect: RegExp }[] = [
  { name: 'an unknown flag', args: [...OK, '--frobnicate', 'x'], expect: /QB_INVALID_FLAG: unknown flag '--frobnicate': expected one of .*--app-port/ },
  { name: 'a misspelt flag', args: [...OK, '--grace-perod', '3'], expect: /unknown flag '--grace-perod': did you mean --grace-period\?/ },
  { name: 'a port that is not a number', args: ['--ip', '127.0.44.1', '--discovery', '127.0.44.1:15010', '--app-port', 'http'], expect: /--app-port 'http' is invalid: expected a port number from 1 to 65535/ },
  { name: 'a port out of range', args: [...OK, '--admin-port', '70000'], expect: /--admin-port '70000' is invalid: expected a port number from 1 to 65535/ },
  { name: 'a missing required flag', args: ['--ip', '127.0.44.1', '--app-port', '50051'], expect: /QB_INVALID_FLAG: missing --discovery: expected host:port of the controller \(as --discovery or QBASIS_DISCOVERY\)/ },
  { name: 'a flag without its value', args: [...OK, '--admin-port'], expect: /--admin-port needs a value: expected a port number from 1 to 65535$/ },
  { name: 'a flag followed by another flag instead of its value', args: ['--ip', '--discovery', '127.0.44.1:15010', '--app-port', '1'], expect: /--ip needs a value: expected .*; got the flag '--discovery' next \(write --ip=VALUE for a value that starts with --\)/ },
  { name: 'a bad --ip', args: ['--ip', 'localhost:80', '--discovery', '127.0.44.1:15010', '--app-port', '1'], expect: /--ip 'localhost:80' is invalid: expected an IPv4 or IPv6 address/ },
  { name: 'a bad --discovery', args: ['--ip', '127.0.44.1', '--discovery', '127.0.44.1', '--app-port', '1'], expect: /--discovery '127\.0\.44\.1' is invalid: expected host:port/ },
  { name: 'a provided version that is not semver', args: [...OK, '--provides', 'shop.orders.v1.OrderService@1.x'], expect: /--provides 'shop\.orders\.v1\.OrderService@1\.x' is invalid: '1\.x' .* is not a semantic version; expected .*MAJOR\.MINOR\.PATCH/ },
  { name: 'a required range that is not a range', args: [...OK, '--requires', 'shop.orders.v1.OrderService@banana'], expect: /--requires 'shop\.orders\.v1\.OrderService@banana' is invalid: 'banana' .* is not a semver range; expected/ },
  { name: 'a bad --outbound-host', args: [...OK, '--outbound-host', 'localhost'], expect: /--outbound-host 'localhost' is invalid: expected an IPv4 or IPv6 address/ },
  { name: '--app-protocol http without --schema', args: [...OK, '--app-protocol', 'http'], expect: /QB_INVALID_FLAG: --app-protocol http needs --schema <path>: the gateway converts JSON with the API's protobuf schema/ },
  { name: 'an --app-protocol that is neither grpc nor http', args: [...OK, '--app-protocol', 'soap'], expect: /--app-protocol 'soap' is invalid: expected one of grpc, http/ },
  { name: '--schema for a gRPC app', args: [...OK, '--schema', '/tmp/x.binpb'], expect: /--schema \/tmp\/x\.binpb is used only with --app-protocol http/ },
  { name: 'a bad --grace-period', args: [...OK, '--grace-period=-1'], expect: /--grace-period '-1' is invalid: expected seconds from 0 to 3600/ },
  // A value that starts with '-' is the flag's value (refused on its merits), with or without '='.
  { name: 'a negative value given without =', args: [...OK, '--grace-period', '-1'], expect: /--grace-period '-1' is invalid: expected seconds from 0 to 3600/ },
  { name: 'a bad --log-level', args: [...OK, '--log-level', 'loud'], expect: /--log-level 'loud' is invalid: expected one of trace/ },
  { name: 'a bad --max-connections', args: [...OK, '--max-connections', '0'], expect: /--max-connections '0' is invalid: expected a whole number from 1 to 1000000/ },
  { name: 'a bad --idle-timeout', args: [...OK, '--idle-timeout', '0.01'], expect: /--idle-timeout '0\.01' is invalid: expected seconds from 0\.05 to 86400/ },
  { name: 'a bad value in the environment (QBASIS_APP_PORT)', args: ['--ip', '127.0.44.1', '--discovery', '127.0.44.1:15010'], env: { QBASIS_APP_PORT: 'abc' }, expect: /--app-port 'abc' \(from QBASIS_APP_PORT\) is invalid: expected a port number/ },
  { name: 'a bad value in the environment (QBASIS_FRAME_IDLE_TIMEOUT)', args: OK, env: { QBASIS_FRAME_IDLE_TIMEOUT: 'soon' }, expect: /--frame-idle-timeout 'soon' \(from QBASIS_FRAME_IDLE_TIMEOUT\) is invalid/ },
  { name: 'a value with a newline (still one line)', args: [...OK, '--pod-name', 'a\nb', '--log-level', 'x\ny'], expect: /--log-level 'x\\x0ay' is invalid/ },
  { name: 'a positional argument', args: [...OK, 'extra'], expect: /QB_USAGE: unexpected argument 'extra': qbasis sidecar takes only flags/ },
  { name: 'a providing pod without --app-port', args: ['--ip', '127.0.44.1', '--discovery', '127.0.44.1:15010', '--provides', 'shop.orders.v1.OrderService@1.4.0'], expect: /QB_INVALID_FLAG: --app-port is needed: the pod provides shop\.orders\.v1\.OrderService@1\.4\.0, and its sidecar passes those calls to the app on that port/ },
  { name: '--token-file without --trust-bundle', args: [...OK, '--token-file', '/tmp/t'], expect: /QB_INVALID_FLAG: --token-file needs --trust-bundle too: mesh identity takes both/ },
  { name: '--trust-bundle without --token-file', args: [...OK, '--trust-bundle', '/tmp/ca.pem'], expect: /QB_INVALID_FLAG: --trust-bundle needs --token-file too/ },
];

test('sidecar refuses an unreadable --trust-bundle with one line and exit 1', () => {
  const r = run([...OK, '--token-file', '/nonexistent/token', '--trust-bundle', '/nonexistent/ca.pem']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^qbasis sidecar: --trust-bundle \/nonexistent\/ca\.pem: cannot read it \(ENOENT\); expected the PEM roots/);
});

// The schema is read before anything binds: a schema that does not load, or lacks an API the pod provides
// or requires, is one line naming the file, the API and what is missing, exit 1.
const schemaDir = mkdtempSync(path.join(tmpdir(), 'qbasis-flags-schema-'));
writeFileSync(path.join(schemaDir, 'orders.proto'), 'syntax = "proto3";\npackage shop.orders.v1;\nmessage Order { string id = 1; }\nservice OrderService { rpc Get(Order) returns (Order); }\n');
const brokenDir = mkdtempSync(path.join(tmpdir(), 'qbasis-flags-schema-'));
writeFileSync(path.join(brokenDir, 'broken.proto'), 'syntax = "proto3";\nmessage Order { string id = ; }\n');
const HTTP = [...OK, '--app-protocol', 'http'];
const schemaCases: { name: string; args: string[]; expect: RegExp }[] = [
  { name: 'a schema that does not parse', args: [...HTTP, '--schema', brokenDir], expect: new RegExp(`^qbasis sidecar: QB_INVALID_SCHEMA: ${brokenDir}/broken\\.proto:2:29: expected a field number, got ';'`) },
  { name: 'a schema path that does not exist', args: [...HTTP, '--schema', '/nonexistent/schema'], expect: /^qbasis sidecar: QB_INVALID_SCHEMA: \/nonexistent\/schema: cannot read the schema: ENOENT/ },
  { name: 'a schema without a provided API', args: [...HTTP, '--schema', schemaDir, '--provides', 'shop.orders.v1.Orders@1.0.0'], expect: new RegExp(`^qbasis sidecar: QB_INVALID_SCHEMA: ${schemaDir}: no service shop\\.orders\\.v1\\.Orders in the schema \\(qbasis\\.io/provides, --provides\\); it defines shop\\.orders\\.v1\\.OrderService`) },
  { name: 'a schema without a required API', args: [...HTTP, '--schema', schemaDir, '--requires', 'shop.pay.v1.Pay@^1'], expect: /no service shop\.pay\.v1\.Pay in the schema \(qbasis\.io\/requires, --requires\)/ },
];
for (const c of schemaCases) {
  test(`sidecar refuses ${c.name} with one line naming the file and exit 1`, () => {
    const r = run(c.args);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, c.expect);
  });
}

for (const c of cases) {
  test(`sidecar refuses ${c.name} with one line and exit 2`, () => {
    const r = run(c.args, c.env);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
    assert.match(lines[0]!, /^qbasis sidecar: QB_(INVALID_FLAG|USAGE): /);
    assert.match(lines[0]!, c.expect);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });
}

test('sidecar --help lists every flag with its QBASIS_ form and exits 0', () => {
  const r = run(['--help']);
  assert.equal(r.code, 0);
  for (const f of ['--ip', '--discovery', '--app-port', '--provides', '--requires', '--grace-period', '--max-frame-bytes']) assert.ok(r.stdout.includes(f), f);
  assert.match(r.stdout, /QBASIS_IP/);
  for (const f of ['--max-concurrent-streams', '--max-connections', '--idle-timeout', '--frame-idle-timeout', '--outbound-host', '--log-level']) assert.ok(r.stdout.includes(f), f);
  assert.match(r.stdout, /--outbound-port <port> +port the app dials \(default 15001\)/);
});

test('a flag wins over its QBASIS_ variable: a bad variable that a flag overrides is not looked at', () => {
  // No --discovery: the parse gets past the variables and stops at the missing flag.
  const r = run(['--ip', '127.0.44.1', '--app-port', '50051'], { QBASIS_APP_PORT: 'abc' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^qbasis sidecar: QB_INVALID_FLAG: missing --discovery/);
  const help = run(['--ip', '127.0.44.1', '--help'], { QBASIS_APP_PORT: 'abc' });
  assert.equal(help.code, 0, 'help wins');
});
