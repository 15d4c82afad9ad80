/**
 * Agency files on disk. A file is written under a temporary name and renamed, so a crash
 * never leaves a truncated `agency-N.csv` behind; memory stays bounded (one ~64 KiB chunk)
 * whatever the row count.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import { WINNING_NUMBER } from '../../shared/domain/bet.js';
import { AgencyRows } from './rows.js';

/** Rows per agency of the course's dataset. */
export const DEFAULT_SIZES: readonly number[] = [26936, 25518, 16014, 9238, 991];
export const DEFAULT_SEED = 7574;
const CHUNK_CHARS = 64 * 1024;

async function drain(out: WriteStream): Promise<void> {
  if (out.errored) throw out.errored;
  await once(out, 'drain');
}

async function writeRows(out: WriteStream, gen: AgencyRows, rows: number): Promise<void> {
  let chunk = '';
  for (let i = 0; i < rows; i++) {
    chunk += gen.next();
    if (chunk.length >= CHUNK_CHARS) {
      if (!out.write(chunk)) await drain(out);
      chunk = '';
    }
  }
  if (chunk.length > 0) out.write(chunk);
  out.end();
  await finished(out);
}

export interface AgencyFileOptions {
  path: string;
  agency: number;
  seed: number;
  rows: number;
}

/** Writes (or overwrites) one agency file; `winners` counts rows whose number is WINNING_NUMBER. */
export async function generateAgencyFile(opts: AgencyFileOptions): Promise<{ rows: number; winners: number }> {
  const tmp = `${opts.path}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  out.on('error', () => {}); // surfaced by drain() and finished()
  const gen = new AgencyRows(opts.seed, opts.agency, opts.rows);
  try {
    await writeRows(out, gen, opts.rows);
    await rename(tmp, opts.path);
  } catch (err) {
    out.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
  return { rows: opts.rows, winners: gen.winners };
}

export interface GenerateDataOptions {
  outDir: string;
  agencies: number;
  seed: number;
  /** Rows per agency, cycled when shorter than `agencies`; defaults to the course's sizes. */
  sizes?: readonly number[];
  /** Overwrite existing files; otherwise they are kept as they are. */
  force?: boolean;
  /** Agency numbers to consider (1-based); all of 1..agencies when absent. */
  only?: readonly number[];
  /** Called as soon as each file is done. */
  onFile?: (result: AgencyResult) => void;
}

export interface AgencyResult {
  agency: number;
  path: string;
  rows: number;
  winners: number;
  kept: boolean;
}

/** Rows and winners (lines ending in `,WINNING_NUMBER`) of a file that is kept. */
async function countExisting(path: string): Promise<{ rows: number; winners: number }> {
  let rows = 0;
  let winners = 0;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    rows++;
    if (line.endsWith(`,${WINNING_NUMBER}`)) winners++;
  }
  return { rows, winners };
}

export async function generateData(opts: GenerateDataOptions): Promise<AgencyResult[]> {
  const sizes = opts.sizes ?? DEFAULT_SIZES;
  if (sizes.length === 0) throw new RangeError('sizes must not be empty');
  const targets = opts.only ?? Array.from({ length: opts.agencies }, (_, i) => i + 1);
  await mkdir(opts.outDir, { recursive: true });
  const results: AgencyResult[] = [];
  for (const agency of targets) {
    const path = join(opts.outDir, `agency-${agency}.csv`);
    const kept =
      !opts.force &&
      (await access(path).then(
        () => true,
        () => false,
      ));
    const rows = sizes[(agency - 1) % sizes.length] as number;
    const counts = kept ? await countExisting(path) : await generateAgencyFile({ path, agency, seed: opts.seed, rows });
    const result = { agency, path, ...counts, kept };
    opts.onFile?.(result);
    results.push(result);
  }
  return results;
}
