/**
 * The client's row decoder (fast path for plain rows, csv-parse for the rest) against the
 * reader it replaced, where csv-parse saw every byte (test/helpers/csv-parse-reader.ts):
 * the same bets, line numbers and bad-row messages on random files mixing plain, quoted and
 * malformed rows, CRLF/LF/CR, a BOM and empty lines, cut into random chunks. Then what the
 * old reader did not have: a cap on the size of one record.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BadRow, betsOf, readAgencyBets } from '../client/bets-reader.js';
import { AgencyRowDecoder, MAX_RECORD_BYTES } from '../client/row-decoder.js';
import type { Bet } from '../shared/domain/bet.js';
import { readWithCsvParseOnly } from './helpers/csv-parse-reader.js';
import { makeTempDir, removeDir } from './helpers/processes.js';

const AGENCY = 4;
type Read = { bets: Bet[]; bad: Array<{ line: number; error: string }> };

let dir: string;
let fileNo = 0;
beforeAll(async () => {
  dir = await makeTempDir('row-decoder');
});
afterAll(async () => {
  await removeDir(dir);
});

async function oracle(bytes: Buffer): Promise<Read> {
  const path = join(dir, `oracle-${fileNo++}.csv`);
  await writeFile(path, bytes);
  const out: Read = { bets: [], bad: [] };
  const onBadRow = (r: BadRow): void => {
    out.bad.push({ line: r.line, error: r.error });
  };
  for await (const chunk of readWithCsvParseOnly({ path, agency: AGENCY, onBadRow })) out.bets.push(...chunk);
  return out;
}

/**
 * The decoder fed `bytes` in pieces of the given sizes (cycled), each through one reused
 * buffer that is overwritten as soon as push() returns, as the client's reader reuses its
 * read buffer: the decoder must keep nothing of a piece.
 */
function decode(bytes: Buffer, pieces: readonly number[]): Read {
  const out: Read = { bets: [], bad: [] };
  const decoder = new AgencyRowDecoder(AGENCY, (line, error) => out.bad.push({ line, error }));
  const drain = (): void => {
    const chunk = decoder.take();
    if (chunk.count > 0) out.bets.push(...betsOf(chunk, AGENCY));
  };
  const reused = Buffer.alloc(Math.max(1, ...pieces));
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const n = Math.max(1, pieces[k % pieces.length]!);
    const piece = reused.subarray(0, bytes.copy(reused, 0, at, at + n));
    decoder.push(piece);
    piece.fill('",\r\n');
    drain();
    at += n;
  }
  decoder.end();
  drain();
  return out;
}

const NAMES = [
  'Ana',
  'José',
  'María Belén',
  ' Inés ',
  'Ñandú',
  'Zoë',
  'O"Neil',
  'a,b',
  '\u00a0Raúl',
  'Luz\u00a0',
  'x\u0085y',
  '\u3000',
  'Jo\u{1F600}',
  '',
  ' ',
];
const DOCS = ['30111222', '1', '0000000000', '12345678901', '12a4', ' 42 ', ''];
const DATES = ['1990-01-01', '2000-02-29', '1900-02-29', '2023-02-30', '1999-13-01', '0000-01-01', '1990-1-01', ' 1991-05-05'];
const NUMBERS = ['7574', '0', '0042', '9999', '10000', '-1', '1.5', ' 12 ', ''];

const field = (pool: string[]): fc.Arbitrary<string> => fc.oneof({ weight: 4, arbitrary: fc.constant(pool[0]!) }, fc.constantFrom(...pool));
/** A field as it may appear in a file: bare, or quoted (quotes doubled, maybe with a line break inside). */
const written = (pool: string[]): fc.Arbitrary<string> =>
  fc
    .tuple(field(pool), fc.nat(9), fc.constantFrom('\n', '\r\n', '\r', ','))
    .map(([v, how, inner]) => (how === 0 ? `"${v.replaceAll('"', '""')}"` : how === 1 ? `"${v}${inner}${v}"` : v));
const row = fc
  .tuple(written(NAMES), written(NAMES), written(DOCS), written(DATES), written(NUMBERS), fc.nat(19))
  .map(([a, b, c, d, e, shape]) => (shape === 0 ? [a, b, c, d] : shape === 1 ? [a, b, c, d, e, e] : [a, b, c, d, e]).join(','));
/** Noise over the bytes that matter to a CSV parser. */
const noise = fc
  .array(fc.constantFrom('a', '1', '-', ',', ',', '"', '"', '\r', '\n', ' ', '\t', '\0', 'é', '\u00a0', '\ufeff'), { maxLength: 24 })
  .map((cs) => cs.join(''));
/** A row with a stray quote somewhere. */
const strayQuote = fc.tuple(row, fc.nat()).map(([r, at]) => `${r.slice(0, at % (r.length + 1))}"${r.slice(at % (r.length + 1))}`);
const line = fc.oneof(
  { weight: 8, arbitrary: row },
  { weight: 2, arbitrary: noise },
  { weight: 1, arbitrary: strayQuote },
  fc.constant(''),
);
const ending = fc.constantFrom('\n', '\n', '\r\n', '\r\n', '\r', '');
const file = fc.tuple(fc.boolean(), fc.array(fc.tuple(line, ending), { maxLength: 40 }), fc.boolean()).map(([bom, lines, lastEnds]) => {
  const text = lines.map(([l, e], i) => (i < lines.length - 1 || lastEnds ? l + e : l)).join('');
  return Buffer.from(bom ? `\ufeff${text}` : text, 'utf8');
});
const pieces = fc.oneof(fc.constant([1 << 16]), fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 8 }));

describe('the row decoder reads what csv-parse alone read', () => {
  it('same bets, line numbers and messages on random files, in random chunks', async () => {
    await fc.assert(
      fc.asyncProperty(file, pieces, async (bytes, sizes) => {
        expect(decode(bytes, sizes)).toEqual(await oracle(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it('same on the client-rows fixture and on the hand-picked corner cases', async () => {
    const cases = [
      '\uFEFFJuan,Pérez,12345678,1990-01-01,1234\r\nAna,Gómez,23456789,1985-05-05,7574\nSolo,Tres,123\r\n\r\n"María, José",Núñez,78901234,1960-06-06,0\r\n"Zoe,Paz,11111111,1990-01-01,14',
      'A,B,1,1990-01-01,1\r\n"Multi\nLine",X,2,1990-01-01,2\r\n\r\nbad,row\r\nC,D,3,1990-01-01,3\r\n',
      '"ab"c,d\nx,y\nA,B,1,1990-01-01,1\n',
      'ab"c,d\nA,B,1,1990-01-01,1\n',
      '"ab"\0,B,1,1990-01-01,1\nA,B,1,1990-01-01,1\n',
      'A,B\r,1,1990-01-01,1\nA,B,1,1990-01-01,1\r',
      '"a\r\nb",B,1,1990-01-01,1\n"x"\r\r\nA,B,1,1990-01-01,1\n',
      '\uFEFF"A",B,1,1990-01-01,1\n\uFEFFA,B,1,1990-01-01,1\n\uFEFF"A",B,1,1990-01-01,1\n',
      'A,B,1,1990-01-01,1',
      '\uFEFF',
      '\n\n\r\n',
    ];
    for (const text of cases) {
      const bytes = Buffer.from(text, 'utf8');
      const want = await oracle(bytes);
      expect(decode(bytes, [1 << 16])).toEqual(want);
      expect(decode(bytes, [1])).toEqual(want);
      expect(decode(bytes, [2, 3])).toEqual(want);
    }
  });

  it('3,000 plain rows shaped like the course files: no bad row, the same bets', async () => {
    const rows = Array.from(
      { length: 3000 },
      (_, i) => `Nombre ${i},Apellido,${30_000_000 + i},19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 10},${i % 10_000}`,
    );
    const bytes = Buffer.from(`${rows.join('\r\n')}\r\n`);
    const got = decode(bytes, [1 << 16]);
    expect(got.bad).toEqual([]);
    expect(got.bets).toHaveLength(3000);
    expect(got).toEqual(await oracle(bytes));
  });

  it('reads a UTF-16LE file (with its BOM) as the same text in UTF-8', async () => {
    const text = 'Ana,Paz,123,1990-01-01,5\r\nJuan,"Pérez, hijo",1,1990-01-02,6\r\nbad\r\nLuis,Ċaz,2,1990-01-03,7\r\n';
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const want = await oracle(Buffer.from(text));
    expect(want.bets).toHaveLength(3);
    expect(decode(utf16, [1 << 16])).toEqual(want);
    expect(decode(utf16, [3, 1])).toEqual(want);
    expect(await oracle(utf16)).toEqual(want);
  });
});

describe('one record is at most MAX_RECORD_BYTES', () => {
  const good = (i: number): string => `Ana,Paz,${i},1990-01-01,${i}\n`;

  it('a line longer than that is one bad row; the rows around it are read', () => {
    const long = 'x'.repeat(MAX_RECORD_BYTES + 10);
    for (const sizes of [[1 << 16], [4096], [MAX_RECORD_BYTES * 3]]) {
      const got = decode(Buffer.from(`${good(1)}${long}\n${good(2)}${long},${long}${good(3)}${good(4)}`), sizes);
      expect(got.bets.map((b) => b.number)).toEqual([1, 2, 4]);
      expect(got.bad.map((b) => b.line)).toEqual([2, 4]);
      expect(got.bad[0]!.error).toMatch(/more than 65536 bytes without a line end; a row is at most 65536 bytes/);
    }
  });

  it('a file with no line end at all gives one bad row, however long, without holding it', () => {
    const bad: number[] = [];
    const decoder = new AgencyRowDecoder(AGENCY, (line) => bad.push(line));
    const piece = Buffer.alloc(1 << 16, 'a,');
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    for (let i = 0; i < 1600; i++) {
      decoder.push(piece); // 100 MiB in all
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
    }
    decoder.end();
    expect(bad).toEqual([1]);
    expect(decoder.take().count).toBe(0);
    // What the decoder holds stays below a few records' worth, far from the 100 MiB it was given.
    expect(peak).toBeLessThan(16 * MAX_RECORD_BYTES);
  });

  it('a quote still open that far on is one bad row naming its lines; reading goes on after them', () => {
    const rows = Array.from({ length: 3000 }, (_, i) => good(100 + i)).join('');
    const text = `${good(1)}"Stray,Quote,5,1990-01-01,5\n${rows}`;
    const got = decode(Buffer.from(text), [1 << 16]);
    expect(got.bad).toHaveLength(1);
    const [report] = got.bad;
    expect(report!.line).toBe(2);
    const m = /^lines 2-(\d+): a quote opened on line 2 is still open 65536 bytes later/.exec(report!.error);
    expect(m).not.toBeNull();
    const lastLost = Number(m![1]);
    // Every row after the swallowed ones is read, numbered as before.
    expect(got.bets.map((b) => b.number)).toEqual([1, ...Array.from({ length: 3000 - (lastLost - 2) }, (_, i) => 100 + lastLost - 2 + i)]);
    // Within the cap, csv-parse's own reading stands: the stray quote swallows to the end of the file.
    const small = Buffer.from(`${good(1)}"Stray,Quote,5,1990-01-01,5\n${good(2)}${good(3)}`);
    expect(decode(small, [7])).toEqual(decode(small, [1 << 16]));
    expect(decode(small, [1 << 16]).bad[0]!.error).toMatch(/^lines 2-4 are one unparsable record .*Quote Not Closed/);
  });
});

describe('names refuse control characters', () => {
  it('C0, DEL and C1 (U+0080-U+009F) in a name are bad rows; U+00A0 and beyond are not controls', async () => {
    const names = ['A\u0001b', 'A\u007fb', 'A\u0080b', 'A\u0085b', 'A\u009fb', 'A\u00a0b', 'A\u00a1b'];
    const text = names.map((n, i) => `${n},Paz,${i},1990-01-01,${i}\n`).join('');
    const got = decode(Buffer.from(text), [1 << 16]);
    expect(got.bad.map((b) => b.line)).toEqual([1, 2, 3, 4, 5]);
    for (const b of got.bad) expect(b.error).toMatch(/first name must be 1-255 bytes of printable text/);
    expect(got.bets.map((b) => b.firstName)).toEqual(['A\u00a0b', 'A\u00a1b']);
    expect(got).toEqual(await oracle(Buffer.from(text)));
  });
});

describe('readAgencyBets over a real file', () => {
  it('yields the decoder bets and reports the file path', async () => {
    const path = join(dir, 'agency.csv');
    await writeFile(path, 'Ana,Paz,1,1990-01-01,1\nbad\n"Eva, M",Luna,2,1990-01-02,2\n');
    const bad: BadRow[] = [];
    const bets: Bet[] = [];
    for await (const b of readAgencyBets({ path, agency: AGENCY, onBadRow: (r) => bad.push(r) })) bets.push(b);
    expect(bets.map((b) => b.firstName)).toEqual(['Ana', 'Eva, M']);
    expect(bad).toEqual([{ file: path, line: 2, error: 'expected 5 fields (nombre,apellido,documento,nacimiento,numero), found 1' }]);
  });
});
