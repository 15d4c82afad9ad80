/** The table-driven CRC-32 against values computed elsewhere (Python's zlib.crc32) and Node's zlib where present. */
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../shared/util/crc32.js';

/** python3 -c "import zlib; print(hex(zlib.crc32(...)))" */
const VECTORS: Array<[string, Buffer, number]> = [
  ['"123456789", the standard check value', Buffer.from('123456789'), 0xcbf43926],
  ['no bytes', Buffer.alloc(0), 0],
  ['28 zero bytes (a zeroed journal record body)', Buffer.alloc(28), 0x807077e9],
  ['0..255 three times', Buffer.from([...Array(3)].flatMap(() => Array.from({ length: 256 }, (_, i) => i))), 0xb0c0df2a],
  ['"Ñandú" in UTF-8', Buffer.from('Ñandú', 'utf8'), 0x4db5fca0],
];

describe('crc32', () => {
  it.each(VECTORS)('%s', (_what, bytes, expected) => {
    expect(crc32(bytes)).toBe(expected);
  });

  it('checksums a range, and continues over data fed in pieces', () => {
    const b = Buffer.from('xx123456789yy');
    expect(crc32(b, 2, 11)).toBe(0xcbf43926);
    expect(crc32(b, 6, 11, crc32(b, 2, 6))).toBe(0xcbf43926);
  });

  const nodeCrc = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
  it.runIf(typeof nodeCrc === 'function')("agrees with Node's zlib.crc32 on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(crc32(bytes)).toBe(nodeCrc!(bytes));
      }),
    );
  });
});
