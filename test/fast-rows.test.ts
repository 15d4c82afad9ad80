/**
 * The byte builder of plain rows (client/fast-rows.ts) against the object path it stands in
 * for: split at the commas, parseAgencyRecord, BatchBuilder. On random and mutated rows it
 * writes the very same bytes, or declines, and then the object path is the one that runs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RowKind, encodePlainRow } from '../client/fast-rows.js';
import { parseAgencyRecord } from '../shared/domain/bet.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { HEADER_SIZE } from '../shared/protocol/messages.js';

const AGENCY = 0x01020304;

/** The object path's bytes for one row: BATCH frame minus its header, or the error. */
function objectPath(row: string): { bytes: string } | { error: string } {
  const bet = parseAgencyRecord(AGENCY, row.split(','));
  if (typeof bet === 'string') return { error: bet };
  const b = new BatchBuilder(1);
  expect(b.add(bet)).toBe(true);
  return {
    bytes: b
      .take(0)
      .subarray(HEADER_SIZE + 6)
      .toString('hex'),
  };
}

function bytePath(row: string): number | string {
  const src = Buffer.from(`##${row}##`); // the row inside a larger buffer, as in a read chunk
  const out = Buffer.alloc(600, 0xaa);
  const end = encodePlainRow(src, 2, src.length - 2, AGENCY, out, 3);
  return end < 0 ? end : out.subarray(3, end).toString('hex');
}

const NAME_PARTS = [
  'Ana',
  'José',
  'Ñ',
  'Zoë',
  ' ',
  '\t',
  '\u000b',
  '\u000c',
  '\u00a0',
  '\u0085',
  '\u0080',
  '\u009f',
  '\u00a1',
  '\u1680',
  '\u2003',
  '\u2028',
  '\u202f',
  '\u205f',
  '\u3000',
  '\ufeff',
  '\u20ac',
  'x',
  '\u{1F600}',
  '\u0000',
  '\u001f',
  '\u007f',
  '\u00ad',
];
const often = <T>(good: fc.Arbitrary<T>, any: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: any });
const name = often(
  fc.constantFrom('Ana', 'José', 'María Belén', 'Ñandú', 'Zoë Ann', 'Jo\u{1F600}', 'a\u2028b'),
  fc.array(fc.constantFrom(...NAME_PARTS), { maxLength: 5 }).map((p) => p.join('')),
);
const digits = (min: number, max: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));
const pad = (a: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  often(
    a,
    fc.tuple(fc.constantFrom('', ' ', '\t', ' \u00a0'), a, fc.constantFrom('', ' ', '\t', '\u3000')).map(([l, v, r]) => l + v + r),
  );
const date = often(
  fc.date({ min: new Date('0001-01-01'), max: new Date('9999-12-31'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
  fc.tuple(digits(0, 4), digits(0, 2), digits(0, 2)).map(([y, m, d]) => `${y}-${m}-${d}`),
);
const row = fc
  .tuple(pad(name), pad(name), pad(often(digits(1, 10), digits(0, 11))), pad(date), pad(often(digits(1, 4), digits(0, 5))))
  .map((fields) => fields.join(','));
/** A row with one byte-level edit: a field count off, a long name, a byte changed. */
const mutated = fc.tuple(row, fc.nat(), fc.constantFrom(',', 'x', '9', '', '-', '\u00e9', 'A'.repeat(260))).map(([r, at, ins]) => {
  const i = at % (r.length + 1);
  return r.slice(0, i) + ins + r.slice(i + (ins === '' ? 1 : 0));
});

describe('encodePlainRow agrees with parseAgencyRecord + BatchBuilder', () => {
  it('writes the same bytes for every row it takes, and takes most well-formed rows', () => {
    let taken = 0;
    let declined = 0;
    fc.assert(
      fc.property(fc.oneof(row, mutated), (r) => {
        const fast = bytePath(r);
        const slow = objectPath(r);
        if (typeof fast === 'string') {
          taken++;
          expect(slow).toEqual({ bytes: fast });
        } else {
          declined++;
          expect(fast).toBe(RowKind.FIELDS);
        }
      }),
      { numRuns: 5000 },
    );
    expect(taken).toBeGreaterThan(200);
    expect(declined).toBeGreaterThan(200);
  });

  it('takes the rows of the course files and declines only what it must', () => {
    expect(bytePath('Santiago Lionel,Lorca,30904465,1999-03-17,2201')).toBe(
      (objectPath('Santiago Lionel,Lorca,30904465,1999-03-17,2201') as { bytes: string }).bytes,
    );
    expect(typeof bytePath(' Tiago Nicolás ,Rivera ,34407251, 2001-08-29,0033')).toBe('string');
    expect(typeof bytePath('José,Inés,1,2000-02-29,0')).toBe('string');
    // Trimmed by String.prototype.trim, so only the object path knows the name.
    expect(bytePath('\u00a0Ana,Paz,1,2000-02-29,0')).toBe(RowKind.FIELDS);
    expect(bytePath('Ana\u3000,Paz,1,2000-02-29,0')).toBe(RowKind.FIELDS);
  });

  it('leaves quotes and carriage returns to csv-parse, and empty rows to the caller', () => {
    expect(bytePath('"Ana",Paz,1,2000-02-29,0')).toBe(RowKind.CSV);
    expect(bytePath('Ana,Paz\r,1,2000-02-29,0')).toBe(RowKind.CSV);
    expect(bytePath('O"Neil,Paz,1,2000-02-29,0')).toBe(RowKind.CSV);
    expect(bytePath('')).toBe(RowKind.EMPTY);
    expect(bytePath('Ana,Paz,1,2000-02-29')).toBe(RowKind.FIELDS);
  });
});
