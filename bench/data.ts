/**
 * Input files of the scenarios. The course's dataset is unzipped into the run's temp dir
 * when present; generated files live in a cache outside the repo (os.tmpdir()), reused
 * across runs: a file's bytes depend only on (seed, agency, rows), and generateAgencyFile
 * renames a file into place only once complete, so an existing file is a whole one.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SEED, DEFAULT_SIZES, generateAgencyFile } from '../tools/gen-data/files.js';

export const COURSE_ZIP = '/work/shared/data/tp0/dataset.zip';
export const COURSE_ZIP_RELATIVE = '../shared/data/tp0/dataset.zip';
export const CACHE_DIR = join(tmpdir(), 'loteria-bench-data');

export interface AgencyFile {
  agency: number;
  path: string;
  rows: number;
  bytes: number;
}

export interface DataSet {
  name: string;
  source: string;
  files: AgencyFile[];
  bets: number;
  bytes: number;
}

function dataSet(name: string, source: string, files: AgencyFile[]): DataSet {
  return {
    name,
    source,
    files,
    bets: files.reduce((n, f) => n + f.rows, 0),
    bytes: files.reduce((n, f) => n + f.bytes, 0),
  };
}

/** Counts LF-terminated rows, reading 1 MiB at a time (memory stays flat for 5M-row files). */
export function countRows(path: string): number {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  let n = 0;
  try {
    for (let got = readSync(fd, buf); got > 0; got = readSync(fd, buf)) {
      for (let i = buf.indexOf(10); i !== -1 && i < got; i = buf.indexOf(10, i + 1)) n++;
    }
  } finally {
    closeSync(fd);
  }
  return n;
}

/** The course's 5 agencies: the real dataset when the zip exists, else generated files of its sizes. */
export async function courseData(workDir: string): Promise<DataSet> {
  const zip = [COURSE_ZIP_RELATIVE, COURSE_ZIP].find((p) => existsSync(p));
  if (zip !== undefined) {
    const dir = join(workDir, 'course');
    mkdirSync(dir, { recursive: true });
    execFileSync('unzip', ['-o', '-q', zip, '-d', dir], { stdio: 'ignore', timeout: 60_000 });
    const files = [1, 2, 3, 4, 5].map((agency) => {
      const path = join(dir, `agency-${agency}.csv`);
      return { agency, path, rows: countRows(path), bytes: statSync(path).size };
    });
    return dataSet('course', `${COURSE_ZIP_RELATIVE} (the course's real dataset)`, files);
  }
  const files = await generated('course', DEFAULT_SIZES.length, (i) => DEFAULT_SIZES[i - 1] as number);
  return dataSet('course', 'generated with the course sizes (dataset.zip absent)', files);
}

/** `agencies` agencies of `rows` rows each, generated once into the cache. */
export async function uniformData(agencies: number, rows: number): Promise<DataSet> {
  const files = await generated(`rows-${rows}`, agencies, () => rows);
  return dataSet(`${agencies}x${rows}`, `generated (seed ${DEFAULT_SEED}) in ${CACHE_DIR}`, files);
}

async function generated(dirName: string, agencies: number, rowsOf: (agency: number) => number): Promise<AgencyFile[]> {
  const dir = join(CACHE_DIR, dirName);
  mkdirSync(dir, { recursive: true });
  const files: AgencyFile[] = [];
  for (let agency = 1; agency <= agencies; agency++) {
    const path = join(dir, `agency-${agency}.csv`);
    const rows = rowsOf(agency);
    if (!existsSync(path)) await generateAgencyFile({ path, agency, seed: DEFAULT_SEED, rows });
    files.push({ agency, path, rows, bytes: statSync(path).size });
  }
  return files;
}
