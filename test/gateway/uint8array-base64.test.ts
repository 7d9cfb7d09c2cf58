// The Buffer-backed Uint8Array.prototype.toBase64 the gateway installs for @bufbuild/protobuf (Node 24 lacks
// it): the same text as RFC 4648's algorithm, written out here, for both alphabets, padded or not, and for
// views into a larger buffer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import '../../sidecar/gateway/uint8array-base64.ts';

const STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function rfc4648(bytes: Uint8Array, url: boolean, pad: boolean): string {
  const table = url ? STD.slice(0, 62) + '-_' : STD;
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let c = 0; c < chars; c++) out += table[(n >> (18 - 6 * c)) & 63];
    if (pad) out += '='.repeat(4 - chars);
  }
  return out;
}

type ToBase64 = (opts?: { alphabet?: 'base64' | 'base64url'; omitPadding?: boolean }) => string;

test('toBase64 writes RFC 4648 base64 for both alphabets, with and without padding, also of a view into a larger buffer', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 70 }), fc.nat(5), fc.nat(5), (all, head, tail) => {
    const view = all.subarray(Math.min(head, all.length), Math.max(Math.min(head, all.length), all.length - tail));
    const enc = (view as Uint8Array & { toBase64: ToBase64 }).toBase64.bind(view);
    assert.equal(enc(), rfc4648(view, false, true));
    assert.equal(enc({ omitPadding: true }), rfc4648(view, false, false));
    assert.equal(enc({ alphabet: 'base64url' }), rfc4648(view, true, true));
    assert.equal(enc({ alphabet: 'base64url', omitPadding: true }), rfc4648(view, true, false));
  }), { numRuns: 500 });
  assert.throws(() => (new Uint8Array(1) as Uint8Array & { toBase64: ToBase64 }).toBase64({ alphabet: 'hex' as 'base64' }), TypeError);
});
