/**
 * A recorded Docker drill (test/fixtures/logs/*.json beside its log) made whole again for the
 * inspector tests: its data regenerated with gen-data and checked against the recorded
 * hashes, and its bets file rebuilt from that data (the e2e script had checked the real one
 * to be exactly the input, once each: the recorded hash of its sorted rows guards that).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FIX } from './inspect-cli.js';
import { ROOT } from './processes.js';

export const AGENCIES = [1, 2, 3, 4, 5];

export interface Recording {
  genData: string[];
  dataSha256: Record<string, string>;
  betsSortedSha256: string;
  states: string[];
}

export interface RecordedDrill {
  rec: Recording;
  /** The regenerated agency-N.csv files. */
  data: string;
  /** The rebuilt bets file (`agency,row` per line) and its rows in file order. */
  bets: string;
  betsRows: string[];
}

const sha256 = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

/** Rebuilds the drill recorded in FIX/`recording` into `dir`; throws when gen-data no longer writes what was recorded. */
export async function rebuildRecordedDrill(dir: string, recording: string): Promise<RecordedDrill> {
  const rec = JSON.parse(await readFile(join(FIX, recording), 'utf8')) as Recording;
  const data = join(dir, 'data');
  await promisify(execFile)(process.execPath, [join(ROOT, 'dist/tools/gen-data.js'), ...rec.genData, '--out', data]);
  const betsRows: string[] = [];
  for (const n of AGENCIES) {
    const file = await readFile(join(data, `agency-${n}.csv`));
    if (sha256(file) !== rec.dataSha256[`agency-${n}.csv`])
      throw new Error(
        `gen-data ${rec.genData.join(' ')} no longer writes the agency-${n}.csv recorded in ${recording}: record the drill again (test/fixtures/logs/README.md)`,
      );
    for (const row of file.toString('utf8').split(/\r?\n/)) if (row !== '') betsRows.push(`${n},${row}`);
  }
  const sorted = [...betsRows].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (sha256(`${sorted.join('\n')}\n`) !== rec.betsSortedSha256)
    throw new Error(`the rebuilt bets file is not the one recorded in ${recording}`);
  const bets = join(dir, 'bets.csv');
  await writeFile(bets, `${betsRows.join('\n')}\n`);
  return { rec, data, bets, betsRows };
}
