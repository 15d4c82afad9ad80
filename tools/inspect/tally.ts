/**
 * What one run did, counted from its lines: per agency both sides' view of every batch (keyed
 * by `lote`, so a batch acknowledged again after a reconnection, or stored once and then
 * answered as `apuesta_duplicada` by a restarted server, counts once), the draw, and how each
 * process ended.
 */
import type { Entry } from './lines.js';
import { Role, type Lifetime, type Run } from './model.js';

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
  maxLote(): number {
    let m = 0;
    for (const l of this.byLote.keys()) m = Math.max(m, Number(l) || 0);
    return m;
  }
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
  running: boolean;
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
  agencies: AgencyTally[];
  draw: DrawTally;
  endings: Map<Lifetime, Ending>;
}

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
  let code: number | null = null;
  let codeFrom: Ending['codeFrom'] = null;
  if (l.exitCode !== null) {
    code = l.exitCode;
    codeFrom = 'docker';
  } else if (configFail !== null) {
    code = 2;
    codeFrom = 'log';
  } else if (exit !== null) {
    const refused = Number(exit.fields.rechazadas ?? 0) > 0 && signal === null;
    code = exit.result === 'success' && !refused ? 0 : 1;
    codeFrom = 'log';
  }
  return { signal, shutdownAt: shutdown?.time ?? null, sequence, exit, configFail, code, codeFrom, running: l.running };
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
  };
}

function tallyClient(t: AgencyTally, l: Lifetime): void {
  t.clients.push(l);
  for (const e of l.entries) {
    if (e.action === 'apuesta_enviada') (e.result === 'success' ? t.acked : t.refusedByClient).add(e);
    else if (e.action === 'notificacion_enviada' && e.result === 'success') t.finishedClient = true;
    else if (e.action === 'consulta_ganadores' && e.result === 'success' && e.fields.cant_ganadores !== undefined)
      t.winnersClient = Number(e.fields.cant_ganadores);
    else if (e.action === 'exit') {
      t.exitTotals = {};
      for (const k of TOTAL_KEYS) if (e.fields[k] !== undefined) t.exitTotals[k] = e.fields[k];
    }
  }
}

function tallyServer(get: (agency: number) => AgencyTally, draw: DrawTally, l: Lifetime): void {
  for (const e of l.entries) {
    const agency = Number(e.fields.agencia);
    const t = Number.isInteger(agency) && agency > 0 ? get(agency) : null;
    if (e.action === 'config' && e.fields.agencies !== undefined) draw.expected = Number(e.fields.agencies);
    else if (e.action === 'apuesta_recibida' && t !== null) (e.result === 'success' ? t.stored : t.refusedByServer).add(e);
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
  for (const s of run.servers) tallyServer(get, draw, s);
  for (const c of run.clients) if (c.role === Role.CLIENT && c.agency !== null) tallyClient(get(c.agency), c);
  for (let a = 1; a <= (draw.expected ?? 0); a++) get(a);
  const agencies = [...byAgency.values()].sort((a, b) => a.agency - b.agency);
  draw.finished = agencies.filter((a) => a.finishedServer).length;
  const endings = new Map<Lifetime, Ending>();
  for (const l of [...run.servers, ...run.clients]) endings.set(l, ending(l));
  return { run, agencies, draw, endings };
}
