/**
 * An agency's rows, one at a time, from a seeded generator: row i depends only on (seed,
 * agency, rows, i), so a file's bytes do not depend on which other agencies are generated.
 * No field ever holds a comma, quote, CR or LF, so no CSV quoting is needed.
 */
import { WINNING_NUMBER } from '../../shared/domain/bet.js';
import { FIRST_NAMES, LAST_NAMES } from './names.js';

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
export class AgencyRows {
  /** Rows so far whose number is WINNING_NUMBER. */
  winners = 0;
  #count = 0;
  readonly #recent: string[] = [];
  readonly #forcedWinner: number;
  readonly #rng: Rng;
  readonly #shared: readonly string[];

  constructor(seed: number, agency: number, rows: number) {
    this.#rng = seededRng(seed, agency);
    this.#shared = sharedPool(seed);
    this.#forcedWinner = rows >= MIN_ROWS_FOR_WINNER ? Math.floor(this.#rng() * rows) : -1;
  }

  next(): string {
    const person = this.#person();
    this.#recent[this.#count % RECENT] = person;
    const n = this.#count === this.#forcedWinner ? WINNING_NUMBER : betNumber(this.#rng);
    this.#count++;
    if (n === WINNING_NUMBER) this.winners++;
    return person + NUMBER_TEXT[n] + '\r\n';
  }

  #person(): string {
    const r = this.#rng();
    if (r < LOCAL_REUSE && this.#recent.length > 0) return pick(this.#rng, this.#recent);
    if (r < LOCAL_REUSE + SHARED_REUSE) return pick(this.#rng, this.#shared);
    return freshPerson(this.#rng);
  }
}
