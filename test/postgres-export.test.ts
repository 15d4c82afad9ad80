/**
 * `npm run export-bets`: the built tool, run as a child process against a real database,
 * writes exactly the stored bets (none of a refused batch, none twice) in the course's
 * format, which the course's reader (loadBets) reads back unchanged.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bet } from '../shared/domain/bet.js';
import { loadBets } from '../server/storage/bets-file.js';
import { POSTGRES, useCluster } from './helpers/postgres.js';
import { batchAt, betAt, encodeBets, openBackend } from './helpers/pg-backends.js';
import { baseEnv, makeTempDir, removeDir, ROOT } from './helpers/processes.js';

const run = promisify(execFile);
const TOOL = join(ROOT, 'dist/tools/export-bets.js');
let dir: string | undefined;

afterEach(async () => {
  await removeDir(dir);
  dir = undefined;
});

/** The course's csv.writer (QUOTE_MINIMAL) row, written here independently of bets-file.ts. */
function courseRow(b: Bet): string {
  const q = (s: string): string =>
    s.includes(',') || s.includes('"') || s.includes('\n') || s.includes('\r') ? `"${s.split('"').join('""')}"` : s;
  return [String(b.agency), q(b.firstName), q(b.lastName), q(b.document), b.birthdate, String(b.number)].join(',');
}

const range = (agency: number, from: number, to: number): Bet[] => Array.from({ length: to - from }, (_, k) => betAt(agency, from + k));

async function exportTool(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [TOOL, ...args], { cwd: ROOT, env: baseEnv(env), encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe.skipIf(!POSTGRES.available)('export-bets from PostgreSQL', () => {
  const db = useCluster();

  it('writes exactly the stored rows in the course format, readable by load_bets', async () => {
    const url = await db.database();
    const backend = await openBackend({ url, agencies: 3 });
    const [c1, c2, c3] = await Promise.all([1, 2, 3].map((a) => backend.claim(a)));
    const badBets = range(2, 50, 100);
    badBets[7] = { ...badBets[7]!, document: '12a' };
    await backend.storeRuns([
      { agency: 1, epoch: c1!.epoch, batches: [0, 60, 120, 180, 240].map((f) => batchAt(1, f, 60)) },
      {
        agency: 2,
        epoch: c2!.epoch,
        batches: [batchAt(2, 0, 50), { first: 50, count: 50, bets: encodeBets(badBets) }, batchAt(2, 100, 50)],
      },
      { agency: 3, epoch: c3!.epoch, batches: [batchAt(3, 0, 100)] },
    ]);
    await backend.storeRuns([{ agency: 3, epoch: c3!.epoch, batches: [batchAt(3, 0, 100)] }]); // a retry: DUPLICATE
    const expected = [...range(1, 0, 300), ...range(2, 0, 50), ...range(2, 100, 150), ...range(3, 0, 100)];

    dir = await makeTempDir('export');
    const out = join(dir, 'bets.csv');
    const result = await exportTool(['--out', out, '--database', url]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe(
      `action: export_bets | result: success | file: ${out} | apuestas: ${expected.length} | sorteo: not drawn yet\n`,
    );

    const text = await readFile(out, 'utf8');
    expect(text.endsWith('\r\n')).toBe(true);
    const lines = text.slice(0, -2).split('\r\n');
    expect(lines.some((l) => l.includes('\n'))).toBe(false);
    expect(lines.sort()).toEqual(expected.map(courseRow).sort());
    // Quoting and escapes really were exercised.
    expect(lines.some((l) => l.includes('"Pérez, ""el"" \\ Gómez"'))).toBe(true);

    const readBack: Bet[] = [];
    for await (const bet of loadBets(out)) readBack.push(bet);
    const key = (b: Bet): string => JSON.stringify(b);
    expect(readBack.map(key).sort()).toEqual(expected.map(key).sort());
  });

  it('says what is wrong: no database, an unknown flag, a schema without the tables', async () => {
    const noDb = await exportTool(['--out', 'x.csv']);
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toMatch(/no database: pass --database postgresql:\/\/.* or set SERVER_DATABASE_URL/);
    expect((await exportTool(['--out', 'x.csv', '--bogus'])).code).toBe(2);
    const url = await db.database();
    dir = await makeTempDir('export');
    const wrong = await exportTool(['--out', join(dir, 'bets.csv'), '--schema', 'nope'], { SERVER_DATABASE_URL: url });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/no lottery tables in schema nope of that database: check --database and --schema/);
    await expect(readFile(join(dir, 'bets.csv'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
