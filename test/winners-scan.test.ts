import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorruptRowError, betsToRows, loadBets } from '../server/storage/bets-file.js';
import { scanWinners, type WinnersScan } from '../server/storage/winners-scan.js';
import { WINNING_NUMBER, hasWon, type Bet } from '../shared/domain/bet.js';
import { makeTempDir, removeDir } from './helpers/processes.js';

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
