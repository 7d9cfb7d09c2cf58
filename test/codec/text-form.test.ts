import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatText, parseText } from '../../proto/basis/index.ts';
import { isQbasisError } from '../../proto/errors.ts';

function bytesOf(segments: number[]): Buffer {
  const b = Buffer.alloc(16);
  segments.forEach((s, i) => b.writeUInt16BE(s, 2 * i));
  return b;
}

const vectors: Array<[number[], string]> = [
  [[0, 0, 1, 2, 3, 4, 5, 6], '::1:2:3:4:5:6'], // run at the start
  [[1, 0, 0, 0, 2, 3, 4, 5], '1::2:3:4:5'], // run in the middle
  [[1, 2, 3, 4, 5, 6, 0, 0], '1:2:3:4:5:6::'], // run at the end
  [[1, 0, 0, 2, 0, 0, 3, 4], '1::2:0:0:3:4'], // tie: the first run
  [[1, 0, 0, 2, 0, 0, 0, 3], '1:0:0:2::3'], // the longer run wins even when later
  [[1, 0, 2, 3, 4, 5, 6, 7], '1:0:2:3:4:5:6:7'], // a single zero stays
  [[0, 0, 0, 0, 0, 0, 0, 0], '::'],
  [[0, 1, 0, 1, 0, 1, 0, 1], '0:1:0:1:0:1:0:1'],
  [[0xffff, 0xabc, 0x0def, 0x10, 1, 0, 0, 0], 'ffff:abc:def:10:1::'], // lower case, no leading zeros
];

test('the text form is RFC 5952 canonical for zero runs at start, middle, end and ties', () => {
  for (const [segs, text] of vectors) {
    assert.equal(formatText(bytesOf(segs)), text, segs.join(','));
    assert.deepEqual(parseText(text), bytesOf(segs), text);
  }
});

test('non-canonical spellings and 32 hex digits parse to the same segments', () => {
  const want = bytesOf([0x7101, 0, 0x30c0, 0x50e8, 0x7d70, 0x104, 0, 0x2a]);
  for (const text of ['7101:0000:30C0:50e8:7d70:0104:0:002a', '  7101:0:30c0:50e8:7d70:104:0:2a\n', '7101:0:30c0:50e8:7d70:104::2a']) {
    assert.deepEqual(parseText(text), want, text);
  }
  assert.deepEqual(parseText('7101000030c050e87d700104' + '0000002a'), want);
  assert.deepEqual(parseText('0x7101000030c050e87d700104' + '0000002a'), want);
});

test('malformed text is refused with QB_FRAME_BAD_TEXT saying what is wrong', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['1:2:3', /3 segments/],
    ['1::2::3', /more than once/],
    ['1:2:3:4:5:6:7:8::', /no segment/],
    ['12345::', /not 1-4 hex digits/],
    ['g::', /not 1-4 hex digits/],
    ['1:2:3:4:5:6:7:8:9', /9 segments/],
    ['::ffff:127.0.0.1', /not 1-4 hex digits/],
  ];
  for (const [text, why] of bad) {
    assert.throws(
      () => parseText(text),
      (err: unknown) => isQbasisError(err, 'QB_FRAME_BAD_TEXT') && why.test(err.message) && /expected/.test(err.message),
      text,
    );
  }
});
