import { execFile, execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorruptRowError, betToRow, loadBets, parseRow, storeBets } from '../server/storage/bets-file.js';
import type { Bet } from '../shared/domain/bet.js';
import { ROOT, makeTempDir, removeDir } from './helpers/processes.js';

const run = promisify(execFile);
const TZ_CHILD = fileURLToPath(new URL('./fixtures/tz-roundtrip.ts', import.meta.url));

const TRICKY: Bet[] = [
  { agency: 1, firstName: 'Santiago Lionel', lastName: 'Lorca', document: '30904465', birthdate: '1999-03-17', number: 7574 },
  { agency: 2, firstName: 'María, José', lastName: 'Núñez', document: '1', birthdate: '2000-02-29', number: 0 },
  { agency: 3, firstName: 'Juan "el Toro"', lastName: 'Peña', document: '9999999999', birthdate: '0001-01-01', number: 9999 },
  { agency: 4, firstName: '"', lastName: '","', document: '42', birthdate: '1970-01-01', number: 1 },
  { agency: 5, firstName: 'Ñandú Öster', lastName: 'D\'Artagnan, "Ñ"', document: '0012', birthdate: '1969-12-31', number: 42 },
  { agency: 10, firstName: 'Zoë 张', lastName: 'Ünal 😀', document: '7', birthdate: '2024-12-31', number: 7574 },
];

const hasPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import csv'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir: string;
let n = 0;
const tmp = (): string => join(dir, `bets-${++n}.csv`);

beforeAll(async () => {
  dir = await makeTempDir('bets-file');
});
afterAll(async () => {
  await removeDir(dir);
});

async function loadAll(path: string): Promise<Bet[]> {
  const out: Bet[] = [];
  for await (const bet of loadBets(path)) out.push(bet);
  return out;
}

const fields = (b: Bet): string[] => [String(b.agency), b.firstName, b.lastName, b.document, b.birthdate, String(b.number)];

describe('row format', () => {
  it('writes plain rows unquoted, ending in CRLF', () => {
    expect(betToRow(TRICKY[0]!)).toBe('1,Santiago Lionel,Lorca,30904465,1999-03-17,7574\r\n');
  });

  it('quotes fields with commas or quotes the way Python QUOTE_MINIMAL does', () => {
    expect(betToRow(TRICKY[1]!)).toBe('2,"María, José",Núñez,1,2000-02-29,0\r\n');
    expect(betToRow(TRICKY[2]!)).toBe('3,"Juan ""el Toro""",Peña,9999999999,0001-01-01,9999\r\n');
    expect(betToRow(TRICKY[3]!)).toBe('4,"""",""",""",42,1970-01-01,1\r\n');
  });

  it('parseRow inverts betToRow for every tricky bet', () => {
    for (const b of TRICKY) expect(parseRow(betToRow(b).slice(0, -2))).toEqual(fields(b));
  });
});

describe('storeBets / loadBets', () => {
  it('round-trips every field, by path and by fd, in file order', async () => {
    const path = tmp();
    storeBets(TRICKY.slice(0, 3), path);
    const fd = openSync(path, 'a');
    try {
      storeBets(TRICKY.slice(3), fd);
    } finally {
      closeSync(fd);
    }
    const text = await readFile(path, 'utf8');
    expect(text).toBe(TRICKY.map(betToRow).join(''));
    expect(text.split('\r\n')).toHaveLength(TRICKY.length + 1);
    expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(await loadAll(path)).toEqual(TRICKY);
  });

  it('round-trips a file larger than one read chunk (rows split across chunks)', async () => {
    const path = tmp();
    const bets = Array.from(
      { length: 40_000 },
      (_, i): Bet => ({
        agency: 1 + (i % 5),
        firstName: i % 7 === 0 ? `Ñoño, "${i}"` : `Nombre${i}`,
        lastName: 'Gómez',
        document: String(10_000_000 + i),
        birthdate: '1985-07-09',
        number: i % 10_000,
      }),
    );
    storeBets(bets, path);
    expect((await readFile(path)).length).toBeGreaterThan(1 << 20);
    expect(await loadAll(path)).toEqual(bets);
  });

  it('loads nothing from an empty file', async () => {
    const path = tmp();
    await writeFile(path, '');
    expect(await loadAll(path)).toEqual([]);
  });

  it('throws CorruptRowError with the line number when the last row was cut mid-write', async () => {
    const path = tmp();
    storeBets(TRICKY.slice(0, 3), path);
    const cut = betToRow(TRICKY[3]!).slice(0, 9);
    await writeFile(path, cut, { flag: 'a' });
    const seen: Bet[] = [];
    const err = await (async () => {
      try {
        for await (const b of loadBets(path)) seen.push(b);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(CorruptRowError);
    expect((err as Error).message).toContain(`${path}:4:`);
    expect(seen).toEqual(TRICKY.slice(0, 3));
  });

  it('throws CorruptRowError with the line number for a row without 6 fields', async () => {
    const path = tmp();
    await writeFile(path, betToRow(TRICKY[0]!) + '1,a,b,2\r\n' + betToRow(TRICKY[1]!));
    await expect(loadAll(path)).rejects.toThrow(CorruptRowError);
    await expect(loadAll(path)).rejects.toThrow(`${path}:2: expected 6 fields, found 4`);
  });

  it('reads hand-edited rows in place exactly as the general parser does', async () => {
    const path = tmp();
    const rows = ['07,Ana,Paz,0012,2000-01-01,0012', '3,,,,,', '2, Ana ,Paz,1,2000-01-01,+5', '1,"Paz, Ana",x,1,2000-01-01,9'];
    await writeFile(path, rows.map((r) => `${r}\r\n`).join('') + '1,a,b,c,d,e,7\r\n');
    const seen: Bet[] = [];
    await expect(
      (async () => {
        for await (const b of loadBets(path)) seen.push(b);
      })(),
    ).rejects.toThrow(`${path}:5: expected 6 fields, found 7`);
    const general = rows.map((r) => {
      const [agency, firstName, lastName, document, birthdate, number] = parseRow(r) as [string, string, string, string, string, string];
      return { agency: Number(agency), firstName, lastName, document, birthdate, number: Number(number) };
    });
    expect(seen).toEqual(general);
    expect(seen[0]).toMatchObject({ agency: 7, document: '0012', number: 12 });
    expect(seen[2]).toMatchObject({ firstName: ' Ana ', number: 5 });
  });

  it('throws CorruptRowError for an unterminated quoted field', async () => {
    const path = tmp();
    await writeFile(path, '1,"abc,x,1,1990-01-01,3\r\n');
    await expect(loadAll(path)).rejects.toThrow(CorruptRowError);
  });
});

describe.skipIf(!hasPython)('Python csv compatibility', () => {
  it("the course's csv.reader reads the rows back unchanged, and csv.writer writes the same bytes", async () => {
    const path = tmp();
    storeBets(TRICKY, path);
    const script = [
      'import csv, json, sys',
      'with open(sys.argv[1], newline="", encoding="utf-8") as f:',
      '    rows = list(csv.reader(f, quoting=csv.QUOTE_MINIMAL))',
      'with open(sys.argv[2], "w", newline="", encoding="utf-8") as f:',
      '    w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)',
      '    for r in rows: w.writerow(r)',
      'sys.stdout.write(json.dumps(rows))',
    ].join('\n');
    const again = tmp();
    const { stdout } = await run('python3', ['-c', script, path, again]);
    expect(JSON.parse(stdout)).toEqual(TRICKY.map(fields));
    expect(await readFile(again)).toEqual(await readFile(path));
  });
});

describe('birth dates and time zones', () => {
  it.each(['Pacific/Kiritimati', 'America/Buenos_Aires', 'Pacific/Pago_Pago'])('keep their text exactly under TZ=%s', async (tz) => {
    const path = tmp();
    const { stdout } = await run(process.execPath, ['--import', 'tsx', TZ_CHILD, path, JSON.stringify(TRICKY)], {
      cwd: ROOT,
      env: { ...process.env, TZ: tz },
    });
    const out = JSON.parse(stdout) as { tz: string; bets: Bet[] };
    expect(out.tz).toBe(tz);
    expect(out.bets.map((b) => b.birthdate)).toEqual(TRICKY.map((b) => b.birthdate));
    expect(out.bets).toEqual(TRICKY);
    expect(await readFile(path, 'utf8')).toBe(TRICKY.map(betToRow).join(''));
  });
});
