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
import type { Check } from './checks.js';
import type { RunTally } from './tally.js';

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
    const stored = a?.stored.bets ?? 0;
    rowsOk &&= rows === stored;
    rowsEv.push(`agency ${agency}: ${rows} rows in ${path}, ${stored} bets logged stored${rows === stored ? '' : '  <-- differ'}`);
    const won = file.winners.get(agency) ?? 0;
    if (t.draw.successes.length > 0) {
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

/** Only when some client's `exit` line carries totals: they must agree with its own lines. */
export function checkClientTotals(t: RunTally): Check | null {
  const withTotals = t.agencies.filter((a) => Object.keys(a.exitTotals).length > 0);
  if (withTotals.length === 0) return null;
  let ok = true;
  const evidence = withTotals.map((a) => {
    const x = a.exitTotals;
    const problems: string[] = [];
    const num = (k: string): number | null => (x[k] === undefined ? null : Number(x[k]));
    // `enviadas` counted acknowledged bets; a later client may count every bet it wrote.
    if (num('enviadas') !== null && num('enviadas')! < a.acked.bets) problems.push(`enviadas ${x.enviadas} < ${a.acked.bets} acknowledged`);
    if (num('almacenadas') !== null && num('almacenadas') !== a.acked.bets)
      problems.push(`almacenadas ${x.almacenadas} != ${a.acked.bets} acknowledged`);
    if (num('rechazadas') !== null && num('rechazadas') !== a.refusedByClient.bets)
      problems.push(`rechazadas ${x.rechazadas} != ${a.refusedByClient.bets} refused`);
    if (num('ganadores') !== null && a.winnersClient !== null && num('ganadores') !== a.winnersClient)
      problems.push(`ganadores ${x.ganadores} != ${a.winnersClient} logged`);
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

/** `--data DIR`: every row of an agency's file was acknowledged, and its winners are the file's. */
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
    const sent = a.acked.bets + a.refusedByClient.bets;
    const good = (!whole || input.rows === sent) && (a.winnersClient === null || a.winnersClient === input.winners);
    ok &&= good;
    const note = whole ? '' : ' (its client did not run to the end: rows not compared)';
    return `agency ${a.agency}: ${input.rows} rows (${input.winners} with ${WINNING}) in its file, ${a.acked.bets} acknowledged, ${a.refusedByClient.bets} refused, winners ${a.winnersClient ?? '-'}${note}${good ? '' : '  <-- differ'}`;
  });
  return { id: 'data_files', title: "each agency's file sent whole, its winners as counted in it", ok, evidence };
}
