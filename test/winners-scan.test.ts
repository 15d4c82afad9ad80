import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { CorruptRowError, betsToRows, loadBets } from '../server/storage/bets-file.js';
import { countLinesJs, lineCounter } from '../server/storage/line-count.js';
import { LINE_COUNT_WASM } from '../server/storage/line-count-wasm.js';
import { scanWinners, type WinnersScan } from '../server/storage/winners-scan.js';
import { WINNING_NUMBER, hasWon, type Bet } from '../shared/domain/bet.js';
import { ROOT, evalJitless, makeTempDir, removeDir } from './helpers/processes.js';

let dir: string;
let n = 0;
const tmp = (): string => join(dir, `bets-${++n}.csv`);

beforeAll(async () => {
  dir = await makeTempDir('winners-scan');
});
afterAll(async () => {
  await removeDir(dir);
});

/** The course's draw: load_bets + has_won over every row. */
async function courseDraw(path: string): Promise<WinnersScan> {
  const winners = new Map<number, string[]>();
  let scanned = 0;
  for await (const bet of loadBets(path)) {
    scanned++;
    if (!hasWon(bet)) continue;
    winners.set(bet.agency, [...(winners.get(bet.agency) ?? []), bet.document]);
  }
  return { winners: [...winners], scanned };
}

// Names that store_bets quotes (commas, quotes), multi-byte ones, and ones that hold the
// winning number's bytes where a row end is not.
const name = fc.oneof(
  fc.constantFrom(
    'Ana',
    'María, José',
    'Juan "el Toro"',
    '"',
    '","',
    'Zoë 张 😀',
    `x,${WINNING_NUMBER}`,
    `,${WINNING_NUMBER}"`,
    `${WINNING_NUMBER}`,
  ),
  fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/[\r\n]/.test(s)),
);
const bet: fc.Arbitrary<Bet> = fc.record({
  agency: fc.integer({ min: 1, max: 12 }),
  firstName: name,
  lastName: name,
  document: fc.oneof(fc.constant(String(WINNING_NUMBER)), fc.stringMatching(/^[0-9]{1,10}$/)),
  birthdate: fc.constantFrom('1999-03-17', '2000-02-29', '0001-01-01'),
  number: fc.oneof(fc.constantFrom(WINNING_NUMBER, 0, 757, 5740, 9999, 1757), fc.integer({ min: 0, max: 9999 })),
});

describe('scanWinners', () => {
  it('finds what load_bets + has_won finds, in file order, whatever the read size', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(bet, { maxLength: 120, size: 'max' }), fc.integer({ min: 256, max: 1024 }), async (bets, readBytes) => {
        const path = tmp();
        await writeFile(path, betsToRows(bets));
        expect(await scanWinners(path, { readBytes })).toEqual(await courseDraw(path));
      }),
      { numRuns: 150 },
    );
  });

  it('reads a file of several reads, winners on every read boundary', async () => {
    const path = tmp();
    const bets: Bet[] = Array.from({ length: 5000 }, (_, i) => ({
      agency: 1 + (i % 5),
      firstName: i % 7 === 0 ? 'Ana, María' : 'Ana',
      lastName: 'Paz',
      document: String(30_000_000 + i),
      birthdate: '1990-01-02',
      number: i % 3 === 0 ? WINNING_NUMBER : i % 10_000,
    }));
    await writeFile(path, betsToRows(bets));
    const expected = await courseDraw(path);
    expect(expected.winners.flatMap(([, docs]) => docs)).toHaveLength(1667);
    for (const readBytes of [1024, 1031, 4096, 1 << 20]) expect(await scanWinners(path, { readBytes })).toEqual(expected);
  });

  it('skips empty lines as load_bets does, and still counts them in line numbers', async () => {
    const path = tmp();
    const row = (doc: number, number: number): string => `1,Ana,Paz,${doc},1990-01-02,${number}\r\n`;
    await writeFile(path, `\r\n${row(1, WINNING_NUMBER)}\n\n${row(2, 1)}\r\n${row(3, WINNING_NUMBER)}`);
    expect(await scanWinners(path, { readBytes: 256 })).toEqual(await courseDraw(path));
    expect(await scanWinners(path)).toEqual({ winners: [[1, ['1', '3']]], scanned: 3 });
    await writeFile(path, `\n\r\n${row(1, 1)}\n1,"Ana,Paz,2,1990-01-02,${WINNING_NUMBER}\r\n`);
    await expect(scanWinners(path)).rejects.toThrow(`${path}:5: unterminated quoted field`);
  });

  it('counts an empty file as no bets', async () => {
    const path = tmp();
    await writeFile(path, '');
    expect(await scanWinners(path)).toEqual({ winners: [], scanned: 0 });
  });

  it('stops at a corrupt winning row, naming its line, as load_bets does', async () => {
    const path = tmp();
    await writeFile(
      path,
      `1,Ana,Paz,1,1990-01-02,1\r\n2,Eva,Luna,2,1990-01-02,${WINNING_NUMBER}\r\n2,"Eva,Luna,3,1990-01-02,${WINNING_NUMBER}\r\n`,
    );
    const err = await scanWinners(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptRowError);
    expect((err as Error).message).toBe(`${path}:3: unterminated quoted field`);
    await writeFile(path, `1,Ana,Paz,1,1990-01-02,1\r\nAna,Paz,2,1990-01-02,${WINNING_NUMBER}\r\n`);
    await expect(scanWinners(path)).rejects.toThrow(`${path}:2: expected 6 fields, found 5`);
  });

  it('refuses a last row cut mid-write, and a file with no line ends', async () => {
    const path = tmp();
    await writeFile(path, betsToRows([{ agency: 1, firstName: 'A', lastName: 'B', document: '1', birthdate: '1990-01-02', number: 1 }]));
    await appendFile(path, '2,Eva,Lu');
    await expect(scanWinners(path)).rejects.toThrow(`${path}:2: last row is incomplete (no line end): the file was cut mid-write`);
    const long = tmp();
    await writeFile(long, 'x'.repeat(3000));
    await expect(scanWinners(long, { readBytes: 1024 })).rejects.toThrow(`${long}:1: no line end in 1024 bytes`);
  });

  it('reports a missing file as the error it is', async () => {
    await expect(scanWinners(join(dir, 'absent.csv'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('the line count (WebAssembly, SIMD)', () => {
  // Bytes where line ends, CRs and empty lines are common, in runs longer and shorter than a step.
  const bytes = fc.array(fc.constantFrom(0x0a, 0x0a, 0x0d, 0x0d, 0x2c, 0x41, 0x37), { maxLength: 600 });

  it('counts what the plain loop counts, line ends and rows, from any line start to any end', () => {
    fc.assert(
      fc.property(bytes, fc.nat(), fc.nat(), (data, a, b) => {
        const counter = lineCounter(data.length + 1);
        counter.buffer.set(data);
        const src = Buffer.from(data);
        // `from` must be a line start: 0 or just after an LF.
        const starts = [0, ...data.flatMap((c, i) => (c === 0x0a ? [i + 1] : []))];
        const from = starts[a % starts.length]!;
        const to = from + (b % (data.length - from + 1));
        expect(counter.count(from, to)).toEqual(countLinesJs(src, from, to));
      }),
      { numRuns: 2000 },
    );
  });

  it('counts a whole buffer of a million bytes, with the empty lines load_bets skips', () => {
    const counter = lineCounter(1 << 20);
    const line = Buffer.from('1,Ana,Paz,30904465,1999-03-17,7574\r\n');
    for (let o = 0; o + line.length <= counter.buffer.length; o += line.length) line.copy(counter.buffer, o);
    const whole = Math.floor(counter.buffer.length / line.length) * line.length;
    const rows = whole / line.length;
    expect(counter.count(0, whole)).toEqual({ lines: rows, rows });
    // Row 10 becomes bare LFs and row 20 lone CRLFs: empty lines all, which load_bets skips.
    counter.buffer.fill(0x0a, 10 * line.length, 11 * line.length);
    counter.buffer.fill('\r\n', 20 * line.length, 21 * line.length);
    const counts = counter.count(0, whole);
    expect(counts).toEqual({ lines: rows - 2 + line.length + line.length / 2, rows: rows - 2 });
    expect(counts).toEqual(countLinesJs(counter.buffer, 0, whole));
  });

  it('gives the same scan where Node has no WebAssembly (--jitless): the plain loop counts', async () => {
    const path = tmp();
    const row = (doc: number, number: number): string => `1,Ana,Paz,${doc},1990-01-02,${number}\r\n`;
    await writeFile(path, `\r\n${row(1, WINNING_NUMBER)}\n\n${row(2, 1)}${row(3, WINNING_NUMBER)}`);
    const out = evalJitless(
      `import { scanWinners } from ${JSON.stringify(join(ROOT, 'server/storage/winners-scan.ts'))};
       process.stdout.write(JSON.stringify({ wasm: typeof WebAssembly, scan: await scanWinners(${JSON.stringify(path)}) }));`,
    );
    expect(JSON.parse(out)).toEqual({ wasm: 'undefined', scan: { winners: [[1, ['1', '3']]], scanned: 3 } });
  });

  it('is the build of wasm/line-count.ts (after an edit there: npm run build:wasm)', async () => {
    const { LINE_COUNT, compileWasm, renderModule } = await import('../tools/lib/wasm.js');
    const binary = await compileWasm(fileURLToPath(new URL('..', import.meta.url)), LINE_COUNT);
    expect(renderModule(LINE_COUNT, binary)).toContain(`'${LINE_COUNT_WASM}'`);
  });
});
