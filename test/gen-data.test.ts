import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgencyRecord, type Bet } from '../shared/domain/bet.js';
import { generateAgencyFile, generateData } from '../tools/gen-data/files.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SIZES = [20_000, 20_000, 1_000, 37, 0];
const SEED = 7574;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gen-data-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Lines of a CRLF file; fails if any line lacks its `\r\n` or a stray CR/LF remains. */
function crlfLines(text: string): string[] {
  if (text === '') return [];
  expect(text.endsWith('\r\n')).toBe(true);
  const lines = text.slice(0, -2).split('\r\n');
  for (const line of lines) expect(line).not.toMatch(/[\r\n]/);
  return lines;
}

function parseAll(agency: number, text: string): Bet[] {
  return crlfLines(text).map((line, i) => {
    const bet = parseAgencyRecord(agency, line.split(','));
    if (typeof bet === 'string') throw new Error(`agency ${agency} row ${i + 1} ${JSON.stringify(line)}: ${bet}`);
    return bet;
  });
}

describe('generateData', () => {
  let results: Awaited<ReturnType<typeof generateData>>;
  const texts = new Map<number, string>();

  beforeAll(async () => {
    const outDir = join(dir, 'a');
    results = await generateData({ outDir, agencies: SIZES.length, seed: SEED, sizes: SIZES });
    for (const r of results) texts.set(r.agency, await readFile(r.path, 'utf8'));
  });

  it('writes one file per agency with the requested row counts', () => {
    expect(results.map((r) => [r.agency, r.rows, r.kept])).toEqual(SIZES.map((n, i) => [i + 1, n, false]));
    for (const [agency, text] of texts) expect(crlfLines(text)).toHaveLength(SIZES[agency - 1] as number);
  });

  it('writes only valid bets, with real dates, 7-8 digit DNIs and canonical numbers', () => {
    for (const [agency, text] of texts) {
      const lines = crlfLines(text);
      parseAll(agency, text).forEach((bet, i) => {
        expect(bet.document).toMatch(/^[1-9][0-9]{6,7}$/);
        expect(bet.birthdate >= '1940-01-01' && bet.birthdate <= '2005-12-31').toBe(true);
        expect(lines[i]?.endsWith(`,${bet.number}`)).toBe(true); // no leading zeros
      });
    }
  });

  it('reports as winners exactly the rows numbered 7574, at least one when rows >= 1000', () => {
    for (const r of results) {
      const winners = parseAll(r.agency, texts.get(r.agency) ?? '').filter((b) => b.number === 7574).length;
      expect(r.winners).toBe(winners);
      if (r.rows >= 1000) expect(winners).toBeGreaterThan(0);
    }
  });

  it('looks like the real dataset: accents, ñ, two-word names, 29 Feb, 0s, repeated DNIs', () => {
    const bets = parseAll(1, texts.get(1) ?? '');
    const text = texts.get(1) ?? '';
    expect(text).toMatch(/ñ/);
    expect(text).toMatch(/[áéíóú]/);
    expect(bets.some((b) => b.firstName.includes(' '))).toBe(true);
    expect(bets.some((b) => b.birthdate.endsWith('-02-29'))).toBe(true);
    expect(bets.some((b) => b.number === 0)).toBe(true);
    const seen = new Set<string>();
    expect(bets.some((b) => seen.size === seen.add(b.document).size)).toBe(true);
  });

  it('reuses some DNIs across agencies', () => {
    const docs = (agency: number) => new Set(parseAll(agency, texts.get(agency) ?? '').map((b) => b.document));
    const first = docs(1);
    expect([...docs(2)].some((d) => first.has(d))).toBe(true);
  });
});

describe('determinism', () => {
  const gen = async (name: string, seed: number) => {
    const path = join(dir, `${name}.csv`);
    const result = await generateAgencyFile({ path, agency: 2, seed, rows: 5_000 });
    return { result, bytes: await readFile(path) };
  };

  it('gives byte-identical files for the same arguments and different ones for another seed', async () => {
    const a = await gen('d1', 42);
    const b = await gen('d2', 42);
    const c = await gen('d3', 43);
    expect(b.bytes.equals(a.bytes)).toBe(true);
    expect(b.result).toEqual(a.result);
    expect(c.bytes.equals(a.bytes)).toBe(false);
  });
});

describe('--only and --force', () => {
  it('writes only the listed agencies, keeps existing files, and never depends on the others', async () => {
    const outDir = join(dir, 'only');
    const opts = { outDir, agencies: 3, seed: SEED, sizes: [300, 200, 100] };
    const full = await generateData(opts);
    const original = await Promise.all(full.map((r) => readFile(r.path)));
    const [p1, p2, p3] = full.map((r) => r.path) as [string, string, string];

    await writeFile(p1, 'sentinel\r\n');
    await rm(p2);
    const mtime3 = (await stat(p3)).mtimeMs;
    const partial = await generateData({ ...opts, only: [2, 3] });
    expect(partial.map((r) => [r.agency, r.kept])).toEqual([
      [2, false],
      [3, true],
    ]);
    expect(partial[1]).toMatchObject({ rows: 100, winners: full[2]?.winners });
    expect(await readFile(p1, 'utf8')).toBe('sentinel\r\n');
    expect((await readFile(p2)).equals(original[1] as Buffer)).toBe(true);
    expect((await stat(p3)).mtimeMs).toBe(mtime3);

    const forced = await generateData({ ...opts, only: [1], force: true });
    expect(forced).toEqual([{ ...full[0], kept: false }]);
    expect((await readFile(p1)).equals(original[0] as Buffer)).toBe(true);
  });
});

describe('CLI', () => {
  const run = promisify(execFile);
  const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', 'tools/gen-data.ts', ...args], { cwd: ROOT });

  it('exits 2 naming the bad flag', async () => {
    const err = await cli(['--agencies', 'x']).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/--agencies.*"x".*integer/);
  });

  it('exits 2 for an unknown flag and for --only outside the agencies', async () => {
    for (const args of [['--nope'], ['--agencies', '2', '--only', '3'], ['--sizes', '1', '--bets', '2']]) {
      const err = await cli(args).then(
        () => null,
        (e: { code: number }) => e,
      );
      expect(err?.code).toBe(2);
    }
  });

  it('prints one line per file and keeps existing files without --force', async () => {
    const outDir = join(dir, 'cli');
    const args = ['--agencies', '2', '--seed', '1', '--bets', '10', '--out', outDir];
    const first = await cli(args);
    expect(first.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/agency-1\.csv rows=10 winners=\d+$/),
      expect.stringMatching(/agency-2\.csv rows=10 winners=\d+$/),
    ]);
    const second = await cli(args);
    expect(second.stdout).toMatch(/agency-1\.csv rows=10 winners=\d+ kept/);
  }, 20_000);
});
