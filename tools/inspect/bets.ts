/**
 * `--bets FILE`: the server's bets file against the log, and the client's own totals (the
 * fields of its `exit` line) against its lines. A stored row is
 * `agency,first_name,last_name,document,birthdate,number` (docs/protocol.md): the agency is
 * the text before the first comma and the number the text after the last one, whatever the
 * quoted names hold (a field never holds a line break).
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { WINNING_NUMBER } from '../../shared/domain/bet.js';
import { drawn, welcomed, type Check } from './checks.js';
import type { Lifetime } from './model.js';
import { Ranges } from './ranges.js';
import { Batches, storedBets, type AgencyTally, type RunTally } from './tally.js';

const WINNING = String(WINNING_NUMBER);

export interface BetsFileCounts {
  rows: Map<number, number>;
  winners: Map<number, number>;
  bad: string[];
}

export async function countBetsFile(path: string): Promise<BetsFileCounts> {
  const rows = new Map<number, number>();
  const winners = new Map<number, number>();
  const bad: string[] = [];
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    n++;
    if (line.trim() === '') continue;
    const agency = Number(line.slice(0, line.indexOf(',')));
    const number = line.slice(line.lastIndexOf(',') + 1).trim();
    if (!Number.isInteger(agency) || agency < 1 || !/^\d{1,4}$/.test(number)) {
      if (bad.length < 5) bad.push(`line ${n}: ${line.slice(0, 80)}`);
      continue;
    }
    rows.set(agency, (rows.get(agency) ?? 0) + 1);
    if (Number(number) === Number(WINNING)) winners.set(agency, (winners.get(agency) ?? 0) + 1);
  }
  return { rows, winners, bad };
}

export function checkBetsFile(t: RunTally, file: BetsFileCounts, path: string): Check[] {
  const rowsEv: string[] = [];
  const winEv: string[] = [];
  let rowsOk = file.bad.length === 0;
  let winOk = true;
  const agencies = new Set([...t.agencies.map((a) => a.agency), ...file.rows.keys()]);
  for (const agency of [...agencies].sort((a, b) => a - b)) {
    const a = t.agencies.find((x) => x.agency === agency);
    const rows = file.rows.get(agency) ?? 0;
    const stored = a === undefined ? 0 : storedBets(a);
    const how = a === undefined || a.recovered.empty ? 'logged stored' : `stored (${a.recovered.size} of them held with no line)`;
    rowsOk &&= rows === stored;
    rowsEv.push(`agency ${agency}: ${rows} rows in ${path}, ${stored} bets ${how}${rows === stored ? '' : '  <-- differ'}`);
    const won = file.winners.get(agency) ?? 0;
    if (drawn(t)) {
      const reported = a?.winnersServer ?? null;
      const good = reported === null || reported === won;
      winOk &&= good;
      winEv.push(
        `agency ${agency}: ${won} rows with number ${WINNING} in the file, server reported ${reported ?? '-'}${good ? '' : '  <-- differ'}`,
      );
    }
  }
  for (const b of file.bad) rowsEv.push(`unreadable row, ${b}`);
  if (winEv.length === 0) winEv.push('no draw in this run: nothing to recompute');
  return [
    { id: 'bets_file_rows', title: 'bets file: rows per agency = stored', ok: rowsOk, evidence: rowsEv },
    { id: 'bets_file_winners', title: 'bets file: winners recomputed from it = reported', ok: winOk, evidence: winEv },
  ];
}

/** The batches one client lifetime logged acknowledged and refused. */
function lifetimeBatches(l: Lifetime | null): { acked: Batches; refused: Batches } {
  const acked = new Batches();
  const refused = new Batches();
  for (const e of l?.entries ?? []) if (e.action === 'apuesta_enviada') (e.result === 'success' ? acked : refused).add(e);
  return { acked, refused };
}

/**
 * Bets WELCOME reported already on the server that this client lifetime had not had
 * acknowledged or refused itself: what it counts as `ya_en_servidor`.
 */
function resumedBets(t: RunTally, a: AgencyTally, l: Lifetime | null, own: { acked: Batches; refused: Batches }): number {
  const told = Ranges.of(0, Math.max(0, ...a.welcomes.filter((w) => w.by === l).map((w) => w.next)));
  return told.minus(own.acked.ranges(t.indexed)).minus(own.refused.ranges(t.indexed)).size;
}

/** Only when some client's `exit` line carries totals: they must agree with that client's own lines. */
export function checkClientTotals(t: RunTally): Check | null {
  const withTotals = t.agencies.filter((a) => Object.keys(a.exitTotals).length > 0);
  if (withTotals.length === 0) return null;
  let ok = true;
  const evidence = withTotals.map((a) => {
    const x = a.exitTotals;
    const own = lifetimeBatches(a.exitTotalsBy);
    const acked = own.acked.bets;
    const problems: string[] = [];
    const num = (k: string): number | null => (x[k] === undefined ? null : Number(x[k]));
    // `enviadas` counted acknowledged bets; a later client may count every bet it wrote.
    if (num('enviadas') !== null && num('enviadas')! < acked) problems.push(`enviadas ${x.enviadas} < ${acked} acknowledged`);
    if (num('almacenadas') !== null && num('almacenadas') !== acked) problems.push(`almacenadas ${x.almacenadas} != ${acked} acknowledged`);
    if (num('rechazadas') !== null && num('rechazadas') !== own.refused.bets)
      problems.push(`rechazadas ${x.rechazadas} != ${own.refused.bets} refused`);
    if (num('ganadores') !== null && a.winnersClient !== null && num('ganadores') !== a.winnersClient)
      problems.push(`ganadores ${x.ganadores} != ${a.winnersClient} logged`);
    const resumed = t.indexed ? resumedBets(t, a, a.exitTotalsBy, own) : null;
    if (num('ya_en_servidor') !== null && resumed !== null && num('ya_en_servidor') !== resumed)
      problems.push(`ya_en_servidor ${x.ya_en_servidor} != ${resumed} reported by WELCOME and not acknowledged to it`);
    ok &&= problems.length === 0;
    const shown = Object.entries(x)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    return `agency ${a.agency}: ${shown}${problems.length > 0 ? `  <-- ${problems.join('; ')}` : ''}`;
  });
  return { id: 'client_totals', title: "each client's exit totals agree with its lines", ok, evidence };
}

/** Rows and winners of each agency's input file (`DIR/agency-N.csv`, number last). */
export async function countInputs(dir: string, agencies: number[]): Promise<Map<number, { rows: number; winners: number } | null>> {
  const out = new Map<number, { rows: number; winners: number } | null>();
  for (const agency of agencies) {
    try {
      let rows = 0;
      let winners = 0;
      const input = createReadStream(join(dir, `agency-${agency}.csv`));
      for await (const line of createInterface({ input, crlfDelay: Infinity })) {
        if (line.trim() === '') continue;
        rows++;
        if (Number(line.slice(line.lastIndexOf(',') + 1).trim()) === Number(WINNING)) winners++;
      }
      out.set(agency, { rows, winners });
    } catch {
      out.set(agency, null);
    }
  }
  return out;
}

/**
 * The bets of the agency's file accounted for: acknowledged or refused, and (protocol 2) the
 * ones a WELCOME reported already on the server, so a sending that spanned reconnections or
 * client restarts counts whole. Protocol 1 logs have no indexes: the counts are summed.
 */
function accounted(t: RunTally, a: AgencyTally): { bets: number; skipped: number; gapless: boolean } {
  if (!t.indexed) return { bets: a.acked.bets + a.refusedByClient.bets, skipped: 0, gapless: true };
  const own = a.acked.ranges(true).addAll(a.refusedByClient.ranges(true));
  const all = new Ranges().addAll(own).addAll(welcomed(a));
  return { bets: all.size, skipped: all.minus(own).size, gapless: all.covers(0, all.end) };
}

/** `--data DIR`: every row of an agency's file was accounted for, and its winners are the file's. */
export function checkInputs(t: RunTally, inputs: Map<number, { rows: number; winners: number } | null>, dir: string): Check {
  let ok = true;
  const evidence = t.agencies.map((a) => {
    const input = inputs.get(a.agency);
    if (input == null) {
      ok = false;
      return `agency ${a.agency}: ${join(dir, `agency-${a.agency}.csv`)} cannot be read`;
    }
    const last = a.clients.at(-1);
    const end = last === undefined ? undefined : t.endings.get(last);
    const whole = end !== undefined && end.signal === null && end.exit !== null && end.exit.result === 'success';
    const sent = accounted(t, a);
    const valid = input.rows - a.invalidRows.size;
    const good = (!whole || (valid === sent.bets && sent.gapless)) && (a.winnersClient === null || a.winnersClient === input.winners);
    ok &&= good;
    const note = whole ? '' : ' (its client did not run to the end: rows not compared)';
    const invalid = a.invalidRows.size > 0 ? ` (${a.invalidRows.size} invalid, skipped)` : '';
    const skipped = sent.skipped > 0 ? `, ${sent.skipped} already on the server at a WELCOME` : '';
    const gap = sent.gapless ? '' : ', with a gap';
    return `agency ${a.agency}: ${input.rows} rows${invalid} (${input.winners} with ${WINNING}) in its file, ${a.acked.bets} acknowledged, ${a.refusedByClient.bets} refused${skipped}${gap}, winners ${a.winnersClient ?? '-'}${note}${good ? '' : '  <-- differ'}`;
  });
  return { id: 'data_files', title: "each agency's file sent whole, its winners as counted in it", ok, evidence };
}
