/**
 * What one run did, counted from its lines: per agency both sides' view of every batch (keyed
 * by `lote`, so a batch acknowledged again after a reconnection, or stored once and then
 * answered as `apuesta_duplicada` by a restarted server, counts once), what WELCOME said the
 * server held at each (re)connection, the server's recoveries, the draw, and how each process
 * ended.
 */
import type { Entry } from './lines.js';
import { Role, type Lifetime, type Run } from './model.js';
import { Ranges } from './ranges.js';
import { recoverStarts, type Start } from './recovery.js';

/** Batches by `lote` (bets in each); lines without a `lote` are summed apart. */
export class Batches {
  readonly byLote = new Map<string, number>();
  #unkeyedBatches = 0;
  #unkeyedBets = 0;

  add(e: Entry): void {
    const n = Number(e.fields.cantidad ?? 0) || 0;
    const lote = e.fields.lote;
    if (lote === undefined || lote === '') {
      this.#unkeyedBatches++;
      this.#unkeyedBets += n;
    } else this.byLote.set(lote, n);
  }
  get batches(): number {
    return this.byLote.size + this.#unkeyedBatches;
  }
  get bets(): number {
    let s = this.#unkeyedBets;
    for (const n of this.byLote.values()) s += n;
    return s;
  }
  get keyed(): boolean {
    return this.#unkeyedBatches === 0;
  }
  /** Lotes here and not in `other`, in numeric order. */
  missingFrom(other: Batches): string[] {
    return [...this.byLote.keys()].filter((l) => !other.byLote.has(l)).sort((a, b) => Number(a) - Number(b));
  }
  /** The highest `lote` seen, -1 when none: under protocol 2 lote 0 (the first bet) is a real batch. */
  maxLote(): number {
    let m = -1;
    for (const l of this.byLote.keys()) m = Math.max(m, Number(l));
    return m;
  }
  /**
   * The bet indexes these batches hold. Protocol 2's `lote` is the first bet's index: a batch
   * is `[lote, lote + cantidad)`. Protocol 1's was a batch number, a key only: `[lote, lote + 1)`.
   */
  ranges(indexed: boolean): Ranges {
    const r = new Ranges();
    for (const [l, n] of this.byLote) r.add(Number(l), Number(l) + (indexed ? n : 1));
    return r;
  }
  /** Lotes whose batch is not wholly in `r`, in numeric order. */
  outside(r: Ranges, indexed: boolean): string[] {
    const out = [...this.byLote].filter(([l, n]) => !r.covers(Number(l), Number(l) + (indexed ? n : 1))).map(([l]) => l);
    return out.sort((a, b) => Number(a) - Number(b));
  }
  betsOf(lotes: string[]): number {
    return lotes.reduce((n, l) => n + (this.byLote.get(l) ?? 0), 0);
  }
}

/** WELCOME's `next` for an agency, as one side logged it (`siguiente`). */
export interface Welcome {
  /** The client lifetime (`connect | success`) or the server lifetime (`conexion | success`). */
  by: Lifetime;
  next: number;
  entry: Entry;
}

export interface Ending {
  /** The signal that stopped it (from `shutdown` or `exit`), if any. */
  signal: string | null;
  shutdownAt: number | null;
  /** `close_*` and `exit` in the order logged, repeats folded: `close_session x5`. */
  sequence: string[];
  exit: Entry | null;
  /** The `config | fail` line that stopped a start. */
  configFail: Entry | null;
  /** Exit code from Docker when given, else what the lines imply; null when unknown. */
  code: number | null;
  codeFrom: 'docker' | 'log' | null;
  /** The exit code the lines imply (`exit` success 0, fail 1, `config | fail` 2), whatever Docker says. */
  logCode: number | null;
  running: boolean;
  /** Ended without an exit line (SIGKILL, a crash): started again, or Docker gave its exit code. */
  killed: boolean;
}

export interface AgencyTally {
  agency: number;
  clients: Lifetime[];
  acked: Batches;
  refusedByClient: Batches;
  stored: Batches;
  refusedByServer: Batches;
  duplicates: Batches;
  finishedClient: boolean;
  finishedServer: boolean;
  winnersClient: number | null;
  winnersServer: number | null;
  /** The client's own totals from its last `exit` line (fields added later are shown as they come). */
  exitTotals: Record<string, string>;
  /** The client lifetime whose `exit` line gave `exitTotals`. */
  exitTotalsBy: Lifetime | null;
  /** Every `connect | success | siguiente` of its clients, in order. */
  welcomes: Welcome[];
  /** Every `conexion | success | siguiente` of the server for it, in order. */
  bindings: Welcome[];
  /** Lines of the input file the client skipped as invalid (`apuesta_invalida`'s `linea`). */
  invalidRows: Set<string>;
  /** Bets the server held (its WELCOME said so) with no line logging them stored: see recovery.ts. */
  recovered: Ranges;
}

/** A `recuperacion | result: success` line: what one server lifetime found on the disk at start. */
export interface RecoveryLine {
  server: Lifetime;
  entry: Entry;
}

export interface DrawTally {
  expected: number | null;
  finished: number;
  started: number;
  successes: Entry[];
  failures: Entry[];
}

export interface RunTally {
  run: Run;
  /** Protocol 2: `lote` is a first bet index and WELCOME's `next` is logged (`siguiente`). */
  indexed: boolean;
  agencies: AgencyTally[];
  draw: DrawTally;
  endings: Map<Lifetime, Ending>;
  /** The `recuperacion | result: success` lines, in the order of the server's lifetimes. */
  recoveries: RecoveryLine[];
  /** Each server start against the log (protocol 2 only; recovery.ts). */
  starts: Start[];
}

/** Bets the server holds for an agency: logged stored, and held with no line (recovery.ts). */
export const storedBets = (a: AgencyTally): number => a.stored.bets + a.recovered.size;

const TOTAL_KEYS = ['enviadas', 'almacenadas', 'duplicadas', 'ya_en_servidor', 'rechazadas', 'ganadores', 'filas_invalidas'];

function fold(actions: string[]): string[] {
  const out: Array<{ a: string; n: number }> = [];
  for (const a of actions) {
    const last = out.at(-1);
    if (last?.a === a) last.n++;
    else out.push({ a, n: 1 });
  }
  return out.map(({ a, n }) => (n > 1 ? `${a} x${n}` : a));
}

export function ending(l: Lifetime): Ending {
  const shutdown = l.entries.find((e) => e.action === 'shutdown');
  const exit = [...l.entries].reverse().find((e) => e.action === 'exit') ?? null;
  const configFail = l.entries.find((e) => e.action === 'config' && e.result === 'fail') ?? null;
  const signal = shutdown?.fields.signal ?? exit?.fields.signal ?? null;
  const closing = l.entries.filter((e) => e.action.startsWith('close_') || e.action === 'exit');
  const sequence = fold(closing.map((e) => (e.result === 'success' ? e.action : `${e.action}(${e.result})`)));
  let logCode: number | null = null;
  if (configFail !== null) logCode = 2;
  else if (exit !== null) {
    const refused = Number(exit.fields.rechazadas ?? 0) > 0 && signal === null;
    logCode = exit.result === 'success' && !refused ? 0 : 1;
  }
  const code = l.exitCode ?? logCode;
  const killed = exit === null && configFail === null && (l.successor !== null || (l.exitCode !== null && !l.running));
  const codeFrom: Ending['codeFrom'] = l.exitCode !== null ? 'docker' : logCode !== null ? 'log' : null;
  return { signal, shutdownAt: shutdown?.time ?? null, sequence, exit, configFail, code, codeFrom, logCode, running: l.running, killed };
}

function emptyAgency(agency: number): AgencyTally {
  return {
    agency,
    clients: [],
    acked: new Batches(),
    refusedByClient: new Batches(),
    stored: new Batches(),
    refusedByServer: new Batches(),
    duplicates: new Batches(),
    finishedClient: false,
    finishedServer: false,
    winnersClient: null,
    winnersServer: null,
    exitTotals: {},
    exitTotalsBy: null,
    welcomes: [],
    bindings: [],
    invalidRows: new Set(),
    recovered: new Ranges(),
  };
}

function welcome(by: Lifetime, e: Entry): Welcome | null {
  const next = e.fields.siguiente;
  return next !== undefined && /^\d+$/.test(next) ? { by, next: Number(next), entry: e } : null;
}

function tallyClient(t: AgencyTally, l: Lifetime): void {
  t.clients.push(l);
  for (const e of l.entries) {
    if (e.action === 'apuesta_enviada') (e.result === 'success' ? t.acked : t.refusedByClient).add(e);
    else if (e.action === 'notificacion_enviada' && e.result === 'success') t.finishedClient = true;
    else if (e.action === 'connect' && e.result === 'success') {
      const w = welcome(l, e);
      if (w !== null) t.welcomes.push(w);
    } else if (e.action === 'apuesta_invalida' && e.fields.linea !== undefined) t.invalidRows.add(e.fields.linea);
    else if (e.action === 'consulta_ganadores' && e.result === 'success' && e.fields.cant_ganadores !== undefined)
      t.winnersClient = Number(e.fields.cant_ganadores);
    else if (e.action === 'exit') {
      t.exitTotals = {};
      t.exitTotalsBy = l;
      for (const k of TOTAL_KEYS) if (e.fields[k] !== undefined) t.exitTotals[k] = e.fields[k];
    }
  }
}

function tallyServer(get: (agency: number) => AgencyTally, draw: DrawTally, recoveries: RecoveryLine[], l: Lifetime): void {
  for (const e of l.entries) {
    const agency = Number(e.fields.agencia);
    const t = Number.isInteger(agency) && agency > 0 ? get(agency) : null;
    if (e.action === 'config' && e.fields.agencies !== undefined) draw.expected = Number(e.fields.agencies);
    else if (e.action === 'recuperacion' && e.result === 'success') recoveries.push({ server: l, entry: e });
    else if (e.action === 'conexion' && e.result === 'success' && t !== null) {
      const w = welcome(l, e);
      if (w !== null) t.bindings.push(w);
    } else if (e.action === 'apuesta_recibida' && t !== null) (e.result === 'success' ? t.stored : t.refusedByServer).add(e);
    else if (e.action === 'apuesta_duplicada' && t !== null) t.duplicates.add(e);
    else if (e.action === 'notificacion' && e.result === 'success' && t !== null) {
      t.finishedServer = true;
      if (e.fields.esperadas !== undefined) draw.expected = Number(e.fields.esperadas);
    } else if (e.action === 'consulta_ganadores' && e.result === 'success' && t !== null) t.winnersServer = Number(e.fields.cant_ganadores);
    else if (e.action === 'sorteo' && e.result === 'in_progress') draw.started++;
    else if (e.action === 'sorteo' && e.result === 'success') draw.successes.push(e);
    else if (e.action === 'sorteo' && e.result === 'fail') draw.failures.push(e);
  }
}

export function tally(run: Run): RunTally {
  const byAgency = new Map<number, AgencyTally>();
  const get = (agency: number): AgencyTally => {
    const known = byAgency.get(agency);
    if (known !== undefined) return known;
    const fresh = emptyAgency(agency);
    byAgency.set(agency, fresh);
    return fresh;
  };
  const draw: DrawTally = { expected: null, finished: 0, started: 0, successes: [], failures: [] };
  const recoveries: RecoveryLine[] = [];
  for (const s of run.servers) tallyServer(get, draw, recoveries, s);
  for (const c of run.clients) if (c.role === Role.CLIENT && c.agency !== null) tallyClient(get(c.agency), c);
  for (let a = 1; a <= (draw.expected ?? 0); a++) get(a);
  const agencies = [...byAgency.values()].sort((a, b) => a.agency - b.agency);
  draw.finished = agencies.filter((a) => a.finishedServer).length;
  const endings = new Map<Lifetime, Ending>();
  for (const l of [...run.servers, ...run.clients]) endings.set(l, ending(l));
  const indexed = agencies.some((a) => a.welcomes.length > 0 || a.bindings.length > 0);
  const t: RunTally = { run, indexed, agencies, draw, endings, recoveries, starts: [] };
  t.starts = recoverStarts(t);
  return t;
}
