/**
 * The byte builder of plain rows (client/fast-rows.ts) against the object path it stands in
 * for: split at the commas, parseAgencyRecord, BatchBuilder. On random and mutated rows it
 * writes the very same bytes, or declines, and then the object path is the one that runs.
 * Its WebAssembly twin for runs of lines (client/wasm-rows.ts) against it, line by line; and
 * the checked-in module against a fresh build of its source.
 */
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PLAIN_BET, RowKind, encodePlainRow } from '../client/fast-rows.js';
import { PLAIN_ROWS_WASM } from '../client/plain-rows-wasm.js';
import { type BetEnds, type PlainRows, encodeRows } from '../client/wasm-rows.js';
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

/** What encodeRows must do: encodePlainRow line by line, stopping where it declines. */
function lineByLine(src: Buffer, s: number, end: number, out: Buffer, o: number, maxLine: number) {
  const ends: number[] = [];
  let lines = 0;
  while (o <= out.length - MAX_PLAIN_BET) {
    const lf = src.indexOf(0x0a, s);
    if (lf < 0 || lf >= end || lf + 1 - s > maxLine) break;
    const z = lf > s && src[lf - 1] === 0x0d ? lf - 1 : lf;
    if (z > s) {
      const w = encodePlainRow(src, s, z, AGENCY, out, o);
      if (w < 0) break;
      o = w;
      ends.push(o);
    }
    lines++;
    s = lf + 1;
  }
  return { pos: s, out: o, lines, ends, bytes: out.toString('hex') };
}

function inOneRun(src: Buffer, s: number, end: number, out: Buffer, o: number, maxLine: number) {
  const ends: BetEnds = { ends: new Int32Array(1), count: 0 };
  const r: PlainRows = { pos: -1, out: -1, lines: -1 };
  encodeRows(src, s, end, AGENCY, out, o, ends, maxLine, r);
  return { ...r, ends: [...ends.ends.subarray(0, ends.count)], bytes: out.toString('hex') };
}

const line = fc.oneof(
  { weight: 6, arbitrary: row },
  { weight: 2, arbitrary: mutated },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '"Ana",Paz,1,2000-02-29,0', 'Ana\r,Paz,1,2000-02-29,0', 'A'.repeat(300)) },
);
const file = fc
  .tuple(
    fc.array(fc.tuple(line, fc.constantFrom('\n', '\r\n', '\r\r\n')), { maxLength: 40 }),
    fc.constantFrom('', 'tail,without,a,line,end'),
  )
  .map(([lines, tail]) => Buffer.from(lines.map(([l, eol]) => l + eol).join('') + tail));

describe('encodeRows (WebAssembly) takes each line as encodePlainRow does', () => {
  it('the same bytes, ends, stop, and lines on random runs, with any room and line limit', () => {
    fc.assert(
      fc.property(file, fc.nat(), fc.integer({ min: 0, max: 4000 }), fc.integer({ min: 1, max: 400 }), (src, at, room, maxLine) => {
        const s = src.length === 0 ? 0 : at % src.length;
        const o = 5;
        const size = o + MAX_PLAIN_BET + room;
        expect(inOneRun(src, s, src.length, Buffer.alloc(size, 0xaa), o, maxLine)).toEqual(
          lineByLine(src, s, src.length, Buffer.alloc(size, 0xaa), o, maxLine),
        );
      }),
      { numRuns: 3000 },
    );
  });

  it('goes on across its 64 KiB windows, a line cut by a window included, and stops at the first bad row', () => {
    const rows = Array.from(
      { length: 6000 },
      (_, i) => `Nombre ${i},Apellido,${10000000 + i},1990-01-${String(1 + (i % 28)).padStart(2, '0')},${i % 10000}`,
    );
    rows[5500] = 'Ana,Paz,1,2000-02-30,1';
    const src = Buffer.from(`${rows.join('\n')}\n`);
    expect(src.length).toBeGreaterThan(3 * 0x10000);
    const got = inOneRun(src, 0, src.length, Buffer.alloc(1 << 20), 0, 0x10000);
    expect(got).toEqual(lineByLine(src, 0, src.length, Buffer.alloc(1 << 20), 0, 0x10000));
    expect(got.lines).toBe(5500);
    expect(src.toString('utf8', got.pos, got.pos + 22)).toBe('Ana,Paz,1,2000-02-30,1');
  });

  it('a CRLF cut by any window end: the run goes on past it', () => {
    // 42-byte rows after a first row of 24 + d bytes: over d = 0..41 a CR falls at every
    // offset modulo 42, so on every window end the run meets, as in a long CRLF file.
    const row = (i: number) => `Nombre,Apellido,${String(10000000 + i)},1990-01-01,${String(i % 10000).padStart(4, '0')}\r\n`;
    expect(row(1)).toHaveLength(42);
    for (let d = 0; d < 42; d++) {
      const src = Buffer.from(`${'x'.repeat(d)}Ana,Paz,1,2000-02-29,0\r\n${Array.from({ length: 3000 }, (_, i) => row(i)).join('')}`);
      const got = inOneRun(src, 0, src.length, Buffer.alloc(1 << 18), 0, 0x10000);
      expect(got.lines).toBe(3001);
      expect(got).toEqual(lineByLine(src, 0, src.length, Buffer.alloc(1 << 18), 0, 0x10000));
    }
  });

  it('a line longer than a window stops the run there, and a maxLine over a window is refused', () => {
    const long = `${'A'.repeat(255)},${'B'.repeat(255)},1,2000-02-29,0\n`;
    const src = Buffer.from(`Ana,Paz,1,2000-02-29,0\n${' '.repeat(0x10000)}${long}`);
    const got = inOneRun(src, 0, src.length, Buffer.alloc(4096), 0, 0x10000);
    expect({ pos: got.pos, lines: got.lines, ends: got.ends.length }).toEqual({ pos: 23, lines: 1, ends: 1 });
    expect(() => inOneRun(src, 0, src.length, Buffer.alloc(4096), 0, 0x10001)).toThrow(RangeError);
  });

  it('is the build of wasm/plain-rows.ts (after an edit there: npm run build:wasm)', async () => {
    // Imported here only: the compiler is large, and no other test needs it.
    const { PLAIN_ROWS, compileWasm, renderModule } = await import('../tools/lib/wasm.js');
    const binary = await compileWasm(fileURLToPath(new URL('..', import.meta.url)), PLAIN_ROWS);
    expect(renderModule(PLAIN_ROWS, binary)).toContain(`'${PLAIN_ROWS_WASM}'`);
  });
});
