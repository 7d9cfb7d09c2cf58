import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/qbasis.ts', import.meta.url));

function qbasis(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const example = ['--api', 'shop.orders.v1.OrderService', '--method', 'Create', '--version', '1.4', '--kind', 'request', '--encoding', 'protobuf', '--length', '42'];

test('basis encode prints only the text form of the worked example', () => {
  const r = qbasis('basis', 'encode', ...example);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '7101:0:30c0:50e8:7d70:104:0:2a\n');
  assert.equal(r.stderr, '');
});

test('basis encode --gzip sets the gzip flag', () => {
  const r = qbasis('basis', 'encode', ...example.slice(0, 7), 'response', '--encoding', 'json', '--length', '42', '--gzip');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '7101:d:30c0:50e8:7d70:104:0:2a');
});

test('basis decode prints the documented JSON fields for text and hex input', () => {
  for (const input of ['7101:0:30c0:50e8:7d70:104:0:2a', '7101000030c050e87d7001040000002a']) {
    const r = qbasis('basis', 'decode', input);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      codec: 1,
      kind: 'request',
      encoding: 'protobuf',
      gzip: false,
      apiId: 0x30c050e8,
      methodId: 0x7d70,
      version: '1.4',
      length: 42,
      text: '7101:0:30c0:50e8:7d70:104:0:2a',
    });
  }
});

test('bad input exits 2 with one line naming the problem, its QB_* code, and no stack trace', () => {
  const cases: Array<[string[], RegExp]> = [
    [['basis', 'encode', ...example, '--bogus'], /QB_INVALID_FLAG: unknown flag '--bogus': expected one of --api, --method/],
    [['basis', 'encode', ...example.slice(0, 4), '--version', '1.x', ...example.slice(6)], /QB_INVALID_FLAG: --version '1\.x' is invalid: expected major\.minor, e\.g\. 1\.4/],
    [['basis', 'encode', ...example.slice(0, 4), '--version', '256.0', ...example.slice(6)], /QB_FRAME_VERSION_RANGE: --version '256\.0' is invalid: .*from 0 to 255/],
    [['basis', 'encode', ...example.slice(0, 6), '--kind', 'push', ...example.slice(8)], /QB_INVALID_FLAG: --kind 'push' is invalid: expected one of request, response/],
    [['basis', 'encode', ...example.slice(0, 10)], /QB_INVALID_FLAG: missing --length: expected the payload length/],
    [['basis', 'encode', ...example, 'extra'], /QB_USAGE: unexpected argument 'extra': qbasis basis encode takes only flags/],
    [['basis', 'decode', '7201:0:30c0:50e8:7d70:104:0:2a'], /QB_FRAME_BAD_MAGIC/],
    [['basis', 'decode', '7102:0:30c0:50e8:7d70:104:0:2a'], /QB_FRAME_UNKNOWN_CODEC/],
    [['basis', 'decode', '7101:20:30c0:50e8:7d70:104:0:2a'], /QB_FRAME_RESERVED_BITS/],
    [['basis', 'decode', 'not-a-header'], /QB_FRAME_BAD_TEXT/],
    [['basis', 'decode'], /QB_USAGE: missing header: qbasis basis decode takes 1 \(got 0\)/],
    [['basis', 'frobnicate'], /QB_USAGE: unknown subcommand 'frobnicate': expected one of encode, decode/],
    [['frobnicate'], /^qbasis: QB_USAGE: unknown command 'frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const r = qbasis(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

// Issue 12: values that start with '-' are values, refused (or not) on their merits.
test('basis encode takes a value that starts with a dash as the value: --version -1.0 and --length -1 are refused as values', () => {
  const version = qbasis('basis', 'encode', ...example.slice(0, 4), '--version', '-1.0', ...example.slice(6));
  assert.equal(version.code, 2);
  assert.equal(version.stderr, "qbasis basis encode: QB_INVALID_FLAG: --version '-1.0' is invalid: expected major.minor, e.g. 1.4\n");
  const length = qbasis('basis', 'encode', ...example.slice(0, 10), '--length', '-1');
  assert.equal(length.code, 2);
  assert.equal(length.stderr, "qbasis basis encode: QB_INVALID_FLAG: --length '-1' is invalid: expected a whole number of bytes from 0 to 4294967295\n");
  for (const r of [version, length]) assert.doesNotMatch(r.stderr, /needs a value/);
});

test('basis encode --gzip=false and --gzip=true are the boolean written out; --gzip=maybe is refused', () => {
  const off = qbasis('basis', 'encode', ...example, '--gzip=false');
  assert.equal(off.code, 0, off.stderr);
  assert.equal(off.stdout, '7101:0:30c0:50e8:7d70:104:0:2a\n');
  const on = qbasis('basis', 'encode', ...example, '--gzip=true');
  assert.equal(on.code, 0, on.stderr);
  assert.equal(on.stdout, '7101:4:30c0:50e8:7d70:104:0:2a\n');
  const bad = qbasis('basis', 'encode', ...example, '--gzip=maybe');
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "qbasis basis encode: QB_INVALID_FLAG: --gzip 'maybe' is invalid: expected true or false\n");
});

test('basis encode --version 1 and --version 300.1 are the same class of mistake: both exit 2', () => {
  const notMajorMinor = qbasis('basis', 'encode', ...example.slice(0, 4), '--version', '1', ...example.slice(6));
  const outOfRange = qbasis('basis', 'encode', ...example.slice(0, 4), '--version', '300.1', ...example.slice(6));
  assert.equal(notMajorMinor.code, 2, notMajorMinor.stderr);
  assert.equal(outOfRange.code, 2, outOfRange.stderr);
  assert.match(notMajorMinor.stderr, /^qbasis basis encode: QB_INVALID_FLAG: --version '1' is invalid: expected major\.minor/);
  assert.match(outOfRange.stderr, /^qbasis basis encode: QB_FRAME_VERSION_RANGE: --version '300\.1' is invalid: it does not fit a basis header; expected major and minor from 0 to 255/);
});

test('basis encode applies the name rules the sidecar applies: a 10 KB API name and invalid UTF-8 are refused', () => {
  const long = qbasis('basis', 'encode', '--api', `shop.${'a'.repeat(10_000)}`, ...example.slice(2));
  assert.equal(long.code, 2);
  assert.equal(long.stdout, '');
  assert.equal(long.stderr.trim().split('\n').length, 1);
  assert.match(long.stderr, /QB_INVALID_FLAG: --api 'shop\.a+…' \(10005 characters\) is invalid: it is 10005 characters long; expected a fully-qualified gRPC service name of at most 253 characters/);
  assert.ok(long.stderr.length < 400, 'the value is cut in the message');
  // Raw bytes that are not UTF-8 (0xff), as a shell passes $'shop\xff': Node's argv shows them as U+FFFD.
  const utf8 = spawnSync('bash', ['-c', 'exec "$@" --api "$(printf \'shop\\377\')"', 'qbasis', process.execPath, bin, 'basis', 'encode', ...example.slice(2)], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(utf8.status, 2);
  assert.equal(utf8.stdout, '');
  assert.match(utf8.stderr, /^qbasis basis encode: QB_INVALID_FLAG: --api 'shop\ufffd' is invalid: it contains bytes that are not valid UTF-8/);
  const method = qbasis('basis', 'encode', ...example.slice(0, 2), '--method', 'Cre ate', ...example.slice(4));
  assert.equal(method.code, 2);
  assert.match(method.stderr, /QB_INVALID_FLAG: --method 'Cre ate' is invalid: expected a gRPC method name/);
  // The sidecar refuses the same names.
  const sidecar = qbasis('sidecar', '--ip', '127.0.50.1', '--discovery', '127.0.50.1:15010', '--app-port', '1', '--provides', `shop.${'a'.repeat(10_000)}@1.0.0`);
  assert.equal(sidecar.code, 2);
  assert.match(sidecar.stderr, /QB_INVALID_FLAG: --provides .* is not a fully-qualified gRPC service name/);
});

test('--help explains the commands and the basis flags', () => {
  const top = qbasis('--help');
  assert.equal(top.code, 0);
  for (const cmd of ['basis', 'sidecar', 'controller', 'cluster', 'demo']) assert.match(top.stdout, new RegExp(`\\b${cmd}\\b`));
  for (const args of [['basis', '--help'], ['basis', 'encode', '--help'], ['basis', 'encode', '--api', 'x', '-h']]) {
    const basis = qbasis(...args);
    assert.equal(basis.code, 0, args.join(' '));
    for (const flag of ['--api', '--method', '--version', '--kind', '--encoding', '--gzip', '--length']) assert.ok(basis.stdout.includes(flag), flag);
    assert.match(basis.stdout, /7101:0:30c0:50e8:7d70:104:0:2a/);
  }
  const decode = qbasis('basis', 'decode', '--help');
  assert.equal(decode.code, 0);
  assert.match(decode.stdout, /^Usage: qbasis basis decode <text form \| 32 hex digits>/);
});
