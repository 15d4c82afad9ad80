/**
 * The invariants of one run, each ok or FAIL with the lines that show it. A batch stored but
 * never acknowledged is allowed only at the tail of an agency whose client or server stopped
 * (it was in flight); anything acknowledged and not stored, anywhere, is a failure.
 */
import type { Entry } from './lines.js';
import { Role, type Lifetime } from './model.js';
import type { AgencyTally, Ending, RunTally } from './tally.js';

export interface Check {
  id: string;
  title: string;
  ok: boolean;
  evidence: string[];
}

export const at = (e: Entry): string => `${e.source}: ${e.text}`;
/** Lotes as ranges: `1-31, 40`. */
const list = (xs: string[], max = 8): string => {
  const parts: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && Number(xs[j + 1]) === Number(xs[j]) + 1) j++;
    parts.push(j > i ? `${xs[i]}-${xs[j]}` : `${xs[i]}`);
    i = j + 1;
  }
  return parts.length <= max ? parts.join(', ') : `${parts.slice(0, max).join(', ')}, ... (${xs.length} in all)`;
};

/** Whether a lifetime ended other than by finishing its work: a signal, a failure, no exit yet. */
function stoppedEarly(e: Ending): boolean {
  return e.signal !== null || e.running || e.exit === null || e.exit.result !== 'success';
}

/** The server lifetime that stopped (signal or failure) before `by`, if any. */
function serverStopped(t: RunTally, by: number | null): Lifetime | undefined {
  return t.run.servers.find((s) => {
    const end = t.endings.get(s)!;
    const stopped = end.signal !== null || end.exit?.result === 'fail';
    return stopped && (by === null || end.shutdownAt === null || end.shutdownAt <= by);
  });
}

function storedVsAcked(t: RunTally): Check {
  const evidence: string[] = [];
  let ok = true;
  const hasClients = t.run.clients.some((c) => c.role === Role.CLIENT);
  for (const a of t.agencies) {
    const who = a.clients[0]?.name ?? `agency ${a.agency}'s client`;
    if (a.clients.length === 0) {
      evidence.push(`agency ${a.agency}: ${a.stored.bets} bets stored; not compared (no lines of its client)`);
      continue;
    }
    if (!a.acked.keyed || !a.stored.keyed) {
      const same = a.acked.bets === a.stored.bets;
      ok &&= same;
      evidence.push(
        `agency ${a.agency}: ${a.stored.bets} bets stored, ${a.acked.bets} acknowledged to ${who}${same ? '' : '  <-- differ'}`,
      );
      continue;
    }
    const lost = a.acked.missingFrom(a.stored);
    const unacked = a.stored.missingFrom(a.acked);
    const clientEnd = a.clients.at(-1) === undefined ? undefined : t.endings.get(a.clients.at(-1)!);
    const client = a.clients.at(-1)!;
    const byServer = serverStopped(t, client.end)?.name;
    const stopper = byServer ?? (clientEnd !== undefined && stoppedEarly(clientEnd) ? who : undefined);
    const tail = unacked.every((l) => Number(l) > a.acked.maxLote());
    const line = `agency ${a.agency}: ${a.stored.batches} batches (${a.stored.bets} bets) stored, ${a.acked.batches} (${a.acked.bets} bets) acknowledged to ${who}`;
    if (lost.length > 0) {
      ok = false;
      evidence.push(`${line}  <-- lote ${list(lost)} acknowledged but never logged stored by the server`);
    }
    if (unacked.length > 0 && (stopper === undefined || !tail)) {
      ok = false;
      evidence.push(`${line}  <-- lote ${list(unacked)} stored but never acknowledged to ${who}, which ended normally`);
    } else if (unacked.length > 0) {
      const bets = unacked.reduce((n, l) => n + (a.stored.byLote.get(l) ?? 0), 0);
      evidence.push(`${line}; lote ${list(unacked)} (${bets} bets) stored while ${stopper} was stopping: in flight, not lost`);
    } else if (lost.length === 0) evidence.push(line);
  }
  if (!hasClients) evidence.unshift('no client lines: nothing to compare');
  return { id: 'stored_equals_acknowledged', title: 'stored = acknowledged, per agency', ok, evidence };
}

function drawOnce(t: RunTally): Check {
  const { draw } = t;
  const evidence: string[] = [];
  const allFinished = draw.expected !== null && draw.finished >= draw.expected;
  const n = draw.successes.length;
  let ok = n <= 1;
  evidence.push(`${draw.finished} of ${draw.expected ?? '?'} agencies sent FINISHED; sorteo | success logged ${n} time(s)`);
  for (const e of draw.successes) evidence.push(at(e));
  if (allFinished && n === 0) {
    ok = false;
    evidence.push('every agency finished but the draw never succeeded');
  }
  if (!allFinished && draw.expected !== null && n > 0) {
    ok = false;
    evidence.push('the draw ran before every agency had finished');
  }
  if (n === 1) {
    const scanned = Number(draw.successes[0]!.fields.apuestas);
    const stored = t.agencies.reduce((s, a) => s + a.stored.bets, 0);
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
  const drawn = t.draw.successes.length > 0;
  for (const a of t.agencies) {
    const c = a.winnersClient;
    const s = a.winnersServer;
    const end = a.clients.at(-1) === undefined ? undefined : t.endings.get(a.clients.at(-1)!);
    const clientGone = end === undefined || stoppedEarly(end);
    let good: boolean;
    if (!drawn) good = c === null && s === null;
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
  if (!drawn) evidence.unshift('no draw in this run: no winners may be reported');
  return { id: 'winners_agree', title: "each agency's winners equal on both sides", ok, evidence };
}

export function checkRun(t: RunTally): Check[] {
  return [storedVsAcked(t), drawOnce(t), winnersAgree(t)];
}

export type { AgencyTally };
