/**
 * The invariants of one run, each ok or FAIL with the lines that show it. A batch stored but
 * never acknowledged is allowed only at the tail of an agency whose client or server stopped
 * (it was in flight); anything acknowledged and not stored, anywhere, is a failure.
 */
import type { Entry } from './lines.js';
import { concurrentServers, Role, type Lifetime } from './model.js';
import { Ranges } from './ranges.js';
import { storedBets, type AgencyTally, type Ending, type RunTally } from './tally.js';

export interface Check {
  id: string;
  title: string;
  ok: boolean;
  evidence: string[];
}

export const at = (e: Entry): string => `${e.source}: ${e.text}`;
/**
 * Lotes as runs of consecutive batches: `1-31, 40`. `step` is how far a batch's lote is from
 * the next one's: 1 for protocol 1's batch numbers, the batch's bets for protocol 2's indexes.
 */
const list = (xs: string[], step: (l: string) => number = () => 1, max = 8): string => {
  const parts: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && Number(xs[j + 1]) === Number(xs[j]) + step(xs[j]!)) j++;
    parts.push(j > i ? `${xs[i]}-${xs[j]}` : `${xs[i]}`);
    i = j + 1;
  }
  return parts.length <= max ? parts.join(', ') : `${parts.slice(0, max).join(', ')}, ... (${xs.length} in all)`;
};

/** Whether a lifetime ended other than by finishing its work: a signal, a failure, no exit yet. */
function stoppedEarly(e: Ending): boolean {
  return e.signal !== null || e.running || e.exit === null || e.exit.result !== 'success';
}

/** The server lifetime that stopped (signal, failure, killed) before `by`, if any. */
function serverStopped(t: RunTally, by: number | null): Lifetime | undefined {
  return t.run.servers.find((s) => {
    const end = t.endings.get(s)!;
    const stopped = end.signal !== null || end.exit?.result === 'fail' || end.killed;
    const at = end.shutdownAt ?? (end.killed ? s.end : null);
    return stopped && (by === null || at === null || at <= by);
  });
}

/** What the agency's clients were told the server held at a WELCOME: `[0, highest next)`. */
export function welcomed(a: AgencyTally): Ranges {
  return Ranges.of(0, Math.max(0, ...a.welcomes.map((w) => w.next)));
}

/** One agency, batch by batch (protocol 2: bet by bet, so batches cut differently still match). */
function agencyStoredVsAcked(t: RunTally, a: AgencyTally): { ok: boolean; lines: string[] } {
  const who = a.clients[0]!.name;
  const held = a.stored.ranges(t.indexed).addAll(a.recovered);
  const acked = a.acked.ranges(t.indexed);
  const told = welcomed(a);
  const lost = a.acked.outside(held, t.indexed);
  const unacked = a.stored.outside(acked, t.indexed);
  const reported = unacked.filter((l) => t.indexed && told.covers(Number(l), Number(l) + (a.stored.byLote.get(l) ?? 0)));
  const silent = unacked.filter((l) => !reported.includes(l));
  const unseen = a.recovered.minus(acked).minus(told);
  const client = a.clients.at(-1)!;
  const clientEnd = t.endings.get(client)!;
  const byServer = serverStopped(t, client.end)?.name;
  const stopper = byServer ?? (stoppedEarly(clientEnd) ? who : undefined);
  const tail = silent.every((l) => Number(l) > a.acked.maxLote());
  const extra = a.recovered.empty ? '' : ` + ${a.recovered.size} held with no line`;
  const line = `agency ${a.agency}: ${a.stored.batches} batches (${a.stored.bets} bets${extra}) stored, ${a.acked.batches} (${a.acked.bets} bets) acknowledged to ${who}`;
  const notes: string[] = [];
  const ackedStep = (l: string): number => (t.indexed ? (a.acked.byLote.get(l) ?? 1) : 1);
  const storedStep = (l: string): number => (t.indexed ? (a.stored.byLote.get(l) ?? 1) : 1);
  let ok = true;
  if (lost.length > 0) {
    ok = false;
    notes.push(`  <-- lote ${list(lost, ackedStep)} acknowledged but never logged stored by the server`);
  }
  if (silent.length > 0 && (stopper === undefined || !tail)) {
    ok = false;
    notes.push(`  <-- lote ${list(silent, storedStep)} stored but never acknowledged to ${who}, which ended normally`);
  } else if (silent.length > 0)
    notes.push(
      `; lote ${list(silent, storedStep)} (${a.stored.betsOf(silent)} bets) stored while ${stopper} was stopping: in flight, not lost`,
    );
  if (reported.length > 0)
    notes.push(
      `; lote ${list(reported, storedStep)} (${a.stored.betsOf(reported)} bets) stored, the acknowledgement lost, then reported by WELCOME`,
    );
  if (!unseen.empty) {
    ok = false;
    notes.push(`  <-- bets ${unseen.toString()} held by the server but never acknowledged nor reported to ${who}`);
  }
  return { ok, lines: [line + notes.join('')] };
}

function storedVsAcked(t: RunTally): Check {
  const evidence: string[] = [];
  let ok = true;
  const hasClients = t.run.clients.some((c) => c.role === Role.CLIENT);
  for (const a of t.agencies) {
    const who = a.clients[0]?.name ?? `agency ${a.agency}'s client`;
    if (a.clients.length === 0) {
      evidence.push(`agency ${a.agency}: ${storedBets(a)} bets stored; not compared (no lines of its client)`);
      continue;
    }
    if (!a.acked.keyed || !a.stored.keyed) {
      const same = a.acked.bets === storedBets(a);
      ok &&= same;
      evidence.push(
        `agency ${a.agency}: ${storedBets(a)} bets stored, ${a.acked.bets} acknowledged to ${who}${same ? '' : '  <-- differ'}`,
      );
      continue;
    }
    const r = agencyStoredVsAcked(t, a);
    ok &&= r.ok;
    evidence.push(...r.lines);
  }
  if (!hasClients) evidence.unshift('no client lines: nothing to compare');
  return { id: 'stored_equals_acknowledged', title: 'stored = acknowledged, per agency', ok, evidence };
}

/** Each server start's recovered draw (`recuperacion | sorteo: done|pending`) against the draws logged before it. */
function drawRecoveries(t: RunTally): { done: boolean; problems: string[]; lines: string[] } {
  const problems: string[] = [];
  const lines: string[] = [];
  let done = false;
  const beside = concurrentServers(t.run.servers);
  t.run.servers.forEach((server, k) => {
    const rec = t.recoveries.find((r) => r.server === server && r.entry.fields.sorteo !== undefined)?.entry;
    if (rec === undefined) return;
    const before = t.run.servers.slice(0, k);
    // Servers side by side (a shared database): before and after are a matter of timestamps.
    const at = rec.time;
    const drawnBefore = beside
      ? t.draw.successes.some((e) => e.time !== null && at !== null && e.time < at)
      : t.draw.successes.some((e) => before.some((s) => s.entries.includes(e)));
    const pred = before.at(-1);
    const predKilled = pred !== undefined && t.endings.get(pred)!.killed;
    const recovered = rec.fields.sorteo === 'done';
    lines.push(`server lifetime ${k + 1} recovered sorteo: ${rec.fields.sorteo}${drawnBefore ? ' (drawn before it)' : ''}`);
    if (recovered && !drawnBefore && pred !== undefined && !predKilled && !beside)
      problems.push(`server lifetime ${k + 1} recovered a draw that no line logged, though its predecessor logged its exit`);
    if (!recovered && drawnBefore) problems.push(`server lifetime ${k + 1} lost the draw logged before it`);
    done ||= recovered;
    const later = beside
      ? t.draw.successes.filter((e) => e.time !== null && at !== null && e.time > at)
      : t.draw.successes.filter((e) => t.run.servers.slice(k).some((s) => s.entries.includes(e)));
    if (recovered && later.length > 0) problems.push(`server lifetime ${k + 1} recovered the draw and drew again`);
  });
  return { done, problems, lines };
}

/** Whether the run's draw happened: logged, or recovered as done by a server start. */
export function drawn(t: RunTally): boolean {
  return t.draw.successes.length > 0 || t.recoveries.some((r) => r.entry.fields.sorteo === 'done');
}

function drawOnce(t: RunTally): Check {
  const { draw } = t;
  const evidence: string[] = [];
  const recovered = drawRecoveries(t);
  const finishedAtStart = Math.max(0, ...t.recoveries.map((r) => Number(r.entry.fields.agencias_terminadas ?? 0) || 0));
  const finished = Math.max(draw.finished, finishedAtStart);
  const allFinished = draw.expected !== null && finished >= draw.expected;
  const n = draw.successes.length;
  let ok = n <= 1 && recovered.problems.length === 0;
  evidence.push(`${finished} of ${draw.expected ?? '?'} agencies sent FINISHED; sorteo | success logged ${n} time(s)`);
  for (const e of draw.successes) evidence.push(at(e));
  evidence.push(...recovered.lines, ...recovered.problems.map((p) => `${p}  <-- drawn more or less than once`));
  if (allFinished && n === 0 && !recovered.done) {
    ok = false;
    evidence.push('every agency finished but the draw never succeeded');
  }
  if (!allFinished && draw.expected !== null && (n > 0 || recovered.done)) {
    ok = false;
    evidence.push('the draw ran before every agency had finished');
  }
  if (n === 1) {
    const scanned = Number(draw.successes[0]!.fields.apuestas);
    const stored = t.agencies.reduce((s, a) => s + storedBets(a), 0);
    if (scanned !== stored) {
      ok = false;
      evidence.push(`the draw scanned ${scanned} bets but ${stored} were logged stored (a bets file left from an earlier run?)`);
    }
  }
  return { id: 'one_draw', title: 'sorteo | success exactly once per draw', ok, evidence };
}

function winnersAgree(t: RunTally): Check {
  const evidence: string[] = [];
  let ok = true;
  const isDrawn = drawn(t);
  for (const a of t.agencies) {
    const c = a.winnersClient;
    const s = a.winnersServer;
    const end = a.clients.at(-1) === undefined ? undefined : t.endings.get(a.clients.at(-1)!);
    const clientGone = end === undefined || stoppedEarly(end);
    let good: boolean;
    if (!isDrawn) good = c === null && s === null;
    else if (c !== null && s !== null) good = c === s;
    else if (c === null) good = clientGone;
    else good = false;
    ok &&= good;
    const note = c === null && s !== null && good ? ' (its client was gone)' : '';
    evidence.push(`agency ${a.agency}: client ${c ?? '-'}, server ${s ?? '-'}${note}${good ? '' : '  <-- differ'}`);
  }
  const success = t.draw.successes[0];
  if (success !== undefined && t.agencies.every((a) => a.winnersServer !== null)) {
    const sum = t.agencies.reduce((n, a) => n + (a.winnersServer ?? 0), 0);
    const drawnWinners = Number(success.fields.ganadores);
    if (sum !== drawnWinners) ok = false;
    evidence.push(`sum over agencies ${sum}, sorteo ganadores ${drawnWinners}${sum === drawnWinners ? '' : '  <-- differ'}`);
  }
  if (!isDrawn) evidence.unshift('no draw in this run: no winners may be reported');
  return { id: 'winners_agree', title: "each agency's winners equal on both sides", ok, evidence };
}

export function checkRun(t: RunTally): Check[] {
  return [storedVsAcked(t), drawOnce(t), winnersAgree(t)];
}

export type { AgencyTally };
