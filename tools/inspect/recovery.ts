/**
 * Server restarts (protocol 2 logs only): what each server lifetime held at start against what
 * the log accounts for. Its first WELCOME to an agency (`conexion | success | siguiente: N`)
 * says it holds that agency's bets `[0, N)`. Bets there that no earlier line logged stored or
 * refused were stored by a predecessor that could not log them: one killed (no exit line, as
 * after SIGKILL) between a batch's durable write and its line, one whose shutdown was forced
 * at the deadline, or one from before this log began (a re-run on the same files). They count
 * as stored (`AgencyTally.recovered`). A predecessor that exited cleanly had logged every batch
 * it stored and left nothing for recovery to cut, so a gap or a cut after it is a failure; so is
 * a WELCOME that no longer holds a bet logged stored (a stored batch lost), and a recovery
 * (`recuperacion | apuestas: N`) that holds fewer bets than the log accounts for.
 *
 * Several servers sharing a database (issue 13) run side by side: their lines interleave, and
 * "accounted for" means logged before, by timestamp, by any server. A start beside another
 * server finds that server's bets, some not logged yet (committed, the line a moment later),
 * so only the failures that no interleaving explains are kept: fewer bets than logged before
 * it, and a WELCOME that no longer holds a bet logged stored.
 */
import type { Check } from './checks.js';
import type { Entry } from './lines.js';
import { besideAnother, concurrentServers, type Lifetime } from './model.js';
import { Ranges } from './ranges.js';
import type { RunTally } from './tally.js';

/** How the lifetime before a server start ended. */
const Before = { LOG_START: 'log_start', KILLED: 'killed', FORCED: 'forced', CLEAN: 'clean', BESIDE: 'beside' } as const;
type Before = (typeof Before)[keyof typeof Before];

const BEFORE_TEXT: Record<Before, string> = {
  log_start: 'the first of this log',
  killed: 'after a lifetime with no exit line (killed)',
  forced: 'after a forced or failed shutdown',
  clean: 'after a clean exit',
  beside: 'beside another server, sharing its database',
};

export interface Start {
  server: Lifetime;
  number: number;
  before: Before;
  /** `recuperacion | result: success | apuestas: N`, and the WARN one with the bytes cut. */
  line: Entry | null;
  cut: Entry | null;
  /** Bets the log accounts for when this lifetime started, over every agency. */
  accounted: number;
  /** Bets held with no line, revealed by this lifetime's WELCOMEs, per agency. */
  gaps: Map<number, Ranges>;
  /** Bets logged stored before that this lifetime's WELCOME no longer holds, per agency. */
  lost: Map<number, Ranges>;
  /** Agencies with bets before this start that this lifetime never bound (their gaps are unseen). */
  unseen: number[];
}

function before(t: RunTally, k: number): Before {
  const pred = t.run.servers[k - 1];
  if (pred === undefined) return Before.LOG_START;
  const end = t.endings.get(pred)!;
  if (end.exit === null) return Before.KILLED;
  const forced = pred.entries.some(
    (e) => (e.action === 'close_pool' && e.fields.forzado === 'si') || (e.action === 'close_sessions' && e.result === 'fail'),
  );
  return end.exit.result === 'success' && !forced ? Before.CLEAN : Before.FORCED;
}

const rangeOf = (e: Entry): [number, number] => [Number(e.fields.lote), Number(e.fields.lote) + Number(e.fields.cantidad ?? 0)];

function newStart(t: RunTally, server: Lifetime, k: number, kind: Before): Start {
  return {
    server,
    number: k + 1,
    before: kind,
    line: t.recoveries.find((r) => r.server === server && r.entry.fields.apuestas !== undefined)?.entry ?? null,
    cut: t.recoveries.find((r) => r.server === server && r.entry.fields.bytes_cortados !== undefined)?.entry ?? null,
    accounted: 0,
    gaps: new Map(),
    lost: new Map(),
    unseen: [],
  };
}

/** What the log holds of each agency: bets logged stored (plus gaps recovered), and refused. */
class Held {
  readonly held: Map<number, Ranges>;
  readonly refused: Map<number, Ranges>;

  constructor(t: RunTally) {
    this.held = new Map(t.agencies.map((a) => [a.agency, new Ranges()]));
    this.refused = new Map(t.agencies.map((a) => [a.agency, new Ranges()]));
  }

  /** A server's first WELCOME to agency `a`: the gap it reveals (recovered) and what it lost. */
  bind(start: Start, a: RunTally['agencies'][number], next: number): void {
    const mine = this.held.get(a.agency)!;
    const welcome = Ranges.of(0, next);
    const gap = welcome.minus(mine).minus(this.refused.get(a.agency)!);
    const lost = mine.minus(welcome);
    if (!gap.empty) start.gaps.set(a.agency, gap);
    if (!lost.empty) start.lost.set(a.agency, lost);
    mine.addAll(gap);
    a.recovered.addAll(gap);
  }

  line(e: Entry): void {
    if (e.action !== 'apuesta_recibida' || e.fields.lote === undefined) return;
    (e.result === 'success' ? this.held : this.refused).get(Number(e.fields.agencia))?.add(...rangeOf(e));
  }

  get size(): number {
    return [...this.held.values()].reduce((n, r) => n + r.size, 0);
  }
}

/** Fills each agency's `recovered` and returns every server start, in order. */
export function recoverStarts(t: RunTally): Start[] {
  if (!t.indexed) return [];
  return concurrentServers(t.run.servers) ? byTime(t) : inOrder(t);
}

/** One server at a time: each lifetime after the one before it (restarts). */
function inOrder(t: RunTally): Start[] {
  const log = new Held(t);
  const starts: Start[] = [];
  t.run.servers.forEach((server, k) => {
    const start = newStart(t, server, k, before(t, k));
    for (const a of t.agencies) {
      const first = a.bindings.find((b) => b.by === server);
      if (first === undefined) {
        if (!log.held.get(a.agency)!.empty) start.unseen.push(a.agency);
        continue;
      }
      log.bind(start, a, first.next);
    }
    start.accounted = log.size;
    starts.push(start);
    for (const e of server.entries) log.line(e);
  });
  return starts;
}

/** Servers side by side: every server's starts, first WELCOMEs and stored lines in time order. */
function byTime(t: RunTally): Start[] {
  const log = new Held(t);
  const events: Array<{ time: number; rank: number; index: number; apply: () => void }> = [];
  const starts = t.run.servers.map((server, k) => {
    const start = newStart(t, server, k, besideAnother(t.run.servers, server) ? Before.BESIDE : before(t, k));
    const at = server.start ?? 0;
    const bound = new Set<number>();
    events.push({
      time: at,
      rank: 0,
      index: server.entries[0]?.index ?? 0,
      apply: () => {
        start.accounted = log.size;
        for (const a of t.agencies) if (!bound.has(a.agency) && !log.held.get(a.agency)!.empty) start.unseen.push(a.agency);
      },
    });
    for (const a of t.agencies) {
      const first = a.bindings.find((b) => b.by === server);
      if (first === undefined) continue;
      bound.add(a.agency);
      events.push({ time: first.entry.time ?? at, rank: 1, index: first.entry.index, apply: () => log.bind(start, a, first.next) });
    }
    for (const e of server.entries) events.push({ time: e.time ?? at, rank: 2, index: e.index, apply: () => log.line(e) });
    return start;
  });
  events.sort((x, y) => x.time - y.time || x.rank - y.rank || x.index - y.index);
  for (const e of events) e.apply();
  return starts;
}

const perAgency = (m: Map<number, Ranges>): string =>
  [...m].map(([agency, r]) => `agency ${agency}: ${r.size} bets (${r.toString()})`).join('; ');

function judge(s: Start): { ok: boolean; text: string } {
  const problems: string[] = [];
  const n = s.line === null ? null : Number(s.line.fields.apuestas);
  const gapBets = [...s.gaps.values()].reduce((x, r) => x + r.size, 0);
  if (n !== null && n < s.accounted) problems.push(`it holds ${s.accounted - n} bets fewer than the log accounts for`);
  if (n !== null && n > s.accounted && s.unseen.length === 0 && s.before !== Before.BESIDE)
    problems.push(`it holds ${n - s.accounted} bets more than the log and its WELCOMEs account for`);
  if (s.lost.size > 0) problems.push(`its WELCOME no longer holds bets logged stored: ${perAgency(s.lost)}`);
  if (s.before === Before.CLEAN && gapBets > 0) problems.push('its predecessor exited cleanly, yet bets were stored with no line');
  const cut = Number(s.cut?.fields.bytes_cortados ?? 0) + Number(s.cut?.fields.bytes_cortados_journal ?? 0);
  if (s.before === Before.CLEAN && cut > 0) problems.push('its predecessor exited cleanly, yet recovery cut a torn tail');
  const parts = [`server lifetime ${s.number} (${BEFORE_TEXT[s.before]}) recovered ${n ?? '?'} bets; the log accounts for ${s.accounted}`];
  if (gapBets > 0) parts.push(`of which ${gapBets} held with no line logging them stored (${perAgency(s.gaps)})`);
  if (s.cut !== null)
    parts.push(`a torn tail cut: ${s.cut.fields.bytes_cortados} bytes of rows, ${s.cut.fields.bytes_cortados_journal} of journal`);
  if (n !== null && n > s.accounted && s.before === Before.BESIDE)
    parts.push(`${n - s.accounted} not logged yet by the servers beside it when it started`);
  else if (n !== null && n > s.accounted && s.unseen.length > 0)
    parts.push(`${n - s.accounted} not attributed: agency ${s.unseen.join(', ')} did not connect to it`);
  const text = parts.join('; ') + (problems.length > 0 ? `  <-- ${problems.join('; ')}` : '');
  return { ok: problems.length === 0, text };
}

/** Only for protocol 2 logs with a server start: each start's recovery against the log. */
export function checkRecovery(t: RunTally, starts: Start[]): Check | null {
  if (starts.length === 0 || !starts.some((s) => s.line !== null || s.gaps.size > 0)) return null;
  let ok = true;
  const evidence = starts.map((s) => {
    const r = judge(s);
    ok &&= r.ok;
    return r.text;
  });
  if (t.run.servers.length > 1) evidence.push(`${t.run.servers.length} server lifetimes in this run`);
  return { id: 'recovery_accounted', title: 'each server start holds what the log accounts for', ok, evidence };
}
