/**
 * Deterministic generator of agency bet files in the course's format:
 * `nombre,apellido,documento,nacimiento,numero`, no header, UTF-8, `\r\n` after every line.
 *
 * Invariants:
 * - A file's bytes depend only on (seed, agency number, row count): generating agency 3
 *   alone or together with others yields the same bytes.
 * - No field ever contains a comma, quote, CR or LF, so no CSV quoting is needed.
 * - Memory stays bounded (one ~64 KiB chunk plus fixed tables) whatever the row count.
 * - A file is written under a temporary name and renamed, so a crash never leaves a
 *   truncated `agency-N.csv` behind.
 */
import { createReadStream, createWriteStream, realpathSync, type WriteStream } from 'node:fs';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export const DEFAULT_SIZES: readonly number[] = [26936, 25518, 16014, 9238, 991];
const WINNING_NUMBER = 7574;
const CHUNK_CHARS = 64 * 1024;
/** Share of rows that repeat a recent person (same name, DNI, birth date) of the same agency. */
const LOCAL_REUSE = 0.001;
/** Share of rows taken from a seed-wide pool of "regulars" who bet at several agencies. */
const SHARED_REUSE = 0.001;
const SHARED_POOL = 64;
/** Capacity of the ring of recent people a local reuse picks from. */
const RECENT = 4096;
const LEAP_DAY_SHARE = 0.002;
const ZERO_SHARE = 0.0005;
/** Agencies with at least this many rows always get one forced winner. */
const MIN_ROWS_FOR_WINNER = 1000;

const FIRST_NAMES: readonly string[] = [
  'Nicolás',
  'Agustín',
  'José',
  'María Belén',
  'Juan Pablo',
  'Martín',
  'Sofía',
  'Valentina',
  'Lucía',
  'Matías',
  'Tomás',
  'Joaquín',
  'Santiago',
  'Mateo',
  'Benjamín',
  'Julián',
  'Sebastián',
  'Ramón',
  'Inés',
  'Mónica',
  'Verónica',
  'Martina',
  'Camila',
  'Florencia',
  'Rocío',
  'Milagros',
  'Ángel',
  'Germán',
  'Hernán',
  'Maximiliano',
  'Facundo',
  'Gastón',
  'Iván',
  'Andrés',
  'Rubén',
  'Héctor',
  'Raúl',
  'Jesús',
  'Emilia',
  'Catalina',
  'Abril',
  'Paula',
  'Daniela',
  'Gabriela',
  'Carolina',
  'Silvina',
  'Marcela',
  'Mariano',
  'Federico',
  'Gonzalo',
  'Juan Martín',
  'María José',
  'María Inés',
  'Ana Sofía',
  'Luis Ángel',
  'Juan Cruz',
  'Lautaro',
  'Thiago',
  'Zoe',
  'Pilar',
  'Ludmila',
  'Romina',
  'Noelia',
  'Débora',
  'Santiago Lionel',
  'Azul',
  'Candela',
  'Agustina',
  'Valentín',
  'Simón',
  'Damián',
  'Adrián',
  'Cristian',
  'Fabián',
  'Ezequiel',
  'Nahuel',
  'Iñaki',
  'Jazmín',
  'Yanina',
  'Ramiro',
  'Begoña',
  'Óscar',
];
const LAST_NAMES: readonly string[] = [
  'Martínez',
  'González',
  'Rodríguez',
  'Fernández',
  'López',
  'Díaz',
  'Pérez',
  'Gómez',
  'Sánchez',
  'Romero',
  'Sosa',
  'Álvarez',
  'Torres',
  'Ruiz',
  'Ramírez',
  'Flores',
  'Acosta',
  'Benítez',
  'Medina',
  'Suárez',
  'Herrera',
  'Aguirre',
  'Giménez',
  'Gutiérrez',
  'Pereyra',
  'Rojas',
  'Molina',
  'Castro',
  'Ortiz',
  'Silva',
  'Núñez',
  'Luna',
  'Juárez',
  'Cabrera',
  'Ríos',
  'Ferreyra',
  'Godoy',
  'Morales',
  'Domínguez',
  'Moreno',
  'Peralta',
  'Vega',
  'Carrizo',
  'Quiroga',
  'Castillo',
  'Ledesma',
  'Muñoz',
  'Ojeda',
  'Ponce',
  'Vera',
  'Vázquez',
  'Villalba',
  'Cardozo',
  'Navarro',
  'Ramos',
  'Arias',
  'Coronel',
  'Córdoba',
  'Figueroa',
  'Correa',
  'Cáceres',
  'Vargas',
  'Maldonado',
  'Mansilla',
  'Farías',
  'Rivero',
  'Paz',
  'Miranda',
  'Roldán',
  'Méndez',
  'Lucero',
  'Hernández',
  'Agüero',
  'Páez',
  'Escobar',
  'Saldaña',
  'Ibáñez',
  'Montaño',
  'Peña',
  'Zúñiga',
  'Del Valle',
  'Di Stéfano',
  'Lorca',
  'Iriarte',
  'Echeverría',
  'Olivera',
  'Bustos',
];

/** `DATES[i]` is the i-th day from 1940-01-01 to 2005-12-31, computed in UTC. */
const DATES: readonly string[] = (() => {
  const first = Date.UTC(1940, 0, 1);
  const days = (Date.UTC(2005, 11, 31) - first) / 86_400_000 + 1;
  return Array.from({ length: days }, (_, i) => new Date(first + i * 86_400_000).toISOString().slice(0, 10));
})();
const LEAP_DAYS: readonly number[] = DATES.flatMap((d, i) => (d.endsWith('-02-29') ? [i] : []));
const NUMBER_TEXT: readonly string[] = Array.from({ length: 10_000 }, (_, n) => String(n));
/** DNIs grow with birth date: about 10M for 1940 up to 45M for 2005, plus noise. */
const DNI_FIRST = 10_000_000;
const DNI_PER_DAY = 35_000_000 / DATES.length;
const DNI_JITTER = 3_000_000;

/** Uniform in [0, 1). */
type Rng = () => number;

function sfc32(a: number, b: number, c: number, d: number): Rng {
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4_294_967_296;
  };
}

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** One independent stream per (seed, stream id); stream 0 is the seed-wide shared pool. */
function seededRng(seed: number, stream: number): Rng {
  const h = mix32(mix32(seed >>> 0) ^ Math.imul(stream, 0x9e3779b9));
  const rng = sfc32(h, mix32(h ^ 1), mix32(h ^ 2), mix32(h ^ 3));
  for (let i = 0; i < 15; i++) rng();
  return rng;
}

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[Math.floor(rng() * list.length)] as T; // list is never empty
}

/** `nombre,apellido,documento,nacimiento,` of a new person. */
function freshPerson(rng: Rng): string {
  const day = rng() < LEAP_DAY_SHARE ? pick(rng, LEAP_DAYS) : Math.floor(rng() * DATES.length);
  const dni = Math.round(DNI_FIRST + day * DNI_PER_DAY + (rng() - 0.5) * DNI_JITTER);
  return `${pick(rng, FIRST_NAMES)},${pick(rng, LAST_NAMES)},${dni},${DATES[day]},`;
}

function sharedPool(seed: number): readonly string[] {
  const rng = seededRng(seed, 0);
  return Array.from({ length: SHARED_POOL }, () => freshPerson(rng));
}

function betNumber(rng: Rng): number {
  const r = rng();
  return r < ZERO_SHARE ? 0 : Math.floor(((r - ZERO_SHARE) / (1 - ZERO_SHARE)) * 10_000);
}

/** Produces an agency's rows in order; row i depends only on (seed, agency, rows, i). */
class AgencyRows {
  winners = 0;
  private count = 0;
  private readonly recent: string[] = [];
  private readonly forcedWinner: number;

  constructor(
    private readonly rng: Rng,
    private readonly shared: readonly string[],
    rows: number,
  ) {
    this.forcedWinner = rows >= MIN_ROWS_FOR_WINNER ? Math.floor(rng() * rows) : -1;
  }

  next(): string {
    const person = this.person();
    this.recent[this.count % RECENT] = person;
    const n = this.count === this.forcedWinner ? WINNING_NUMBER : betNumber(this.rng);
    this.count++;
    if (n === WINNING_NUMBER) this.winners++;
    return person + NUMBER_TEXT[n] + '\r\n';
  }

  private person(): string {
    const r = this.rng();
    if (r < LOCAL_REUSE && this.recent.length > 0) return pick(this.rng, this.recent);
    if (r < LOCAL_REUSE + SHARED_REUSE) return pick(this.rng, this.shared);
    return freshPerson(this.rng);
  }
}

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

/** Writes (or overwrites) one agency file; `winners` counts rows whose number is 7574. */
export async function generateAgencyFile(opts: AgencyFileOptions): Promise<{ rows: number; winners: number }> {
  const tmp = `${opts.path}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  out.on('error', () => {}); // surfaced by drain() and finished()
  const gen = new AgencyRows(seededRng(opts.seed, opts.agency), sharedPool(opts.seed), opts.rows);
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

/** Rows and winners (lines ending in `,7574`) of a file that is kept. */
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

// ---------------------------------------------------------------- CLI

const USAGE = `usage: gen-data [--agencies N] [--seed S] [--out DIR] [--sizes A,B,... | --bets N] [--only I,J,...] [--force]
  --agencies N   agencies 1..N (default 5)
  --seed S       integer 0..4294967295 (default 7574); same arguments give identical files
  --out DIR      output directory (default data); files are DIR/agency-N.csv
  --sizes LIST   rows per agency, cycled (default ${DEFAULT_SIZES.join(',')})
  --bets N       N rows for every agency (instead of --sizes)
  --only LIST    write only these agency numbers; contents do not depend on this
  --force        overwrite existing files (otherwise they are kept)`;

class UsageError extends Error {}

function intArg(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < min || n > max) {
    throw new UsageError(`--${flag}: got ${JSON.stringify(text)}; give an integer from ${min} to ${max}`);
  }
  return n;
}

function listArg(flag: string, text: string, min: number, max: number): number[] {
  return text.split(',').map((item) => intArg(flag, item.trim(), min, max));
}

type CliOptions = Omit<GenerateDataOptions, 'onFile'>;

function parseCli(argv: string[]): CliOptions | 'help' {
  const str = { type: 'string' } as const;
  const flags = {
    agencies: str,
    seed: str,
    out: str,
    sizes: str,
    bets: str,
    only: str,
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  } as const;
  const values = (() => {
    try {
      return parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false }).values;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  if (values.help) return 'help';
  const agencies = intArg('agencies', values.agencies ?? '5', 1, 100_000);
  const seed = intArg('seed', values.seed ?? '7574', 0, 0xffff_ffff);
  if (values.sizes !== undefined && values.bets !== undefined) throw new UsageError('--sizes and --bets exclude each other: give one');
  const sizes =
    values.bets !== undefined
      ? [intArg('bets', values.bets, 0, 1e9)]
      : values.sizes !== undefined
        ? listArg('sizes', values.sizes, 0, 1e9)
        : undefined;
  if (sizes !== undefined && sizes.length > agencies) {
    throw new UsageError(`--sizes lists ${sizes.length} sizes for ${agencies} agencies: give at most one per agency`);
  }
  const only = values.only === undefined ? undefined : [...new Set(listArg('only', values.only, 1, agencies))].sort((a, b) => a - b);
  const out = values.out ?? 'data';
  if (out === '') throw new UsageError('--out: the directory must not be empty');
  return { outDir: out, agencies, seed, sizes, force: values.force ?? false, only };
}

function describe(r: AgencyResult): string {
  const counts = `rows=${r.rows} winners=${r.winners}`;
  return r.kept ? `${r.path} ${counts} kept (file exists; --force regenerates it)` : `${r.path} ${counts}`;
}

export async function main(argv: string[]): Promise<number> {
  let opts: CliOptions | 'help';
  try {
    opts = parseCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`gen-data: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  await generateData({ ...opts, onFile: (r) => process.stdout.write(`${describe(r)}\n`) });
  return 0;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`gen-data: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
