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

test('bad input exits non-zero with one line naming the problem and no stack trace', () => {
  const cases: Array<[string[], RegExp]> = [
    [['basis', 'encode', ...example, '--bogus'], /unknown flag '--bogus'/],
    [['basis', 'encode', ...example.slice(0, 4), '--version', '1.x', ...example.slice(6)], /--version '1\.x' is not major\.minor/],
    [['basis', 'encode', ...example.slice(0, 4), '--version', '256.0', ...example.slice(6)], /QB_FRAME_VERSION_RANGE/],
    [['basis', 'encode', ...example.slice(0, 6), '--kind', 'push', ...example.slice(8)], /--kind 'push' is not valid; expected request, response/],
    [['basis', 'encode', ...example.slice(0, 10)], /missing --length/],
    [['basis', 'decode', '7201:0:30c0:50e8:7d70:104:0:2a'], /QB_FRAME_BAD_MAGIC/],
    [['basis', 'decode', '7102:0:30c0:50e8:7d70:104:0:2a'], /QB_FRAME_UNKNOWN_CODEC/],
    [['basis', 'decode', '7101:20:30c0:50e8:7d70:104:0:2a'], /QB_FRAME_RESERVED_BITS/],
    [['basis', 'decode', 'not-a-header'], /QB_FRAME_BAD_TEXT/],
    [['basis', 'decode'], /got 0 arguments/],
    [['basis', 'frobnicate'], /unknown subcommand 'frobnicate'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ];
  for (const [args, message] of cases) {
    const r = qbasis(...args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

test('--help explains the commands and the basis flags', () => {
  const top = qbasis('--help');
  assert.equal(top.code, 0);
  for (const cmd of ['basis', 'sidecar', 'controller', 'cluster', 'demo']) assert.match(top.stdout, new RegExp(`\\b${cmd}\\b`));
  const basis = qbasis('basis', '--help');
  assert.equal(basis.code, 0);
  for (const flag of ['--api', '--method', '--version', '--kind', '--encoding', '--gzip', '--length']) assert.ok(basis.stdout.includes(flag), flag);
  assert.match(basis.stdout, /7101:0:30c0:50e8:7d70:104:0:2a/);
});
