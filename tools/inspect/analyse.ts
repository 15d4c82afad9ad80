/** From raw log texts to one report per run: read, split into lifetimes and runs, count, check. */
import { basename } from 'node:path';
import { checkBetsFile, checkClientTotals, checkInputs, countBetsFile, countInputs } from './bets.js';
import { checkRun } from './checks.js';
import { failsExplained, processesExited } from './checks-process.js';
import { readLines, type Entry, type OtherLine } from './lines.js';
import { lifetimes, runs } from './model.js';
import { checkRecovery } from './recovery.js';
import type { RunReport } from './render.js';
import { tally } from './tally.js';

export interface Input {
  /** `-` for standard input, else a path. */
  name: string;
  text: string;
}

export interface AnalyseOptions {
  /** Exit codes known from outside (Docker): name -> code. */
  exits?: Map<string, number>;
  /** Processes known to be still running. */
  running?: Set<string>;
  /** The server's bets file, checked against the last run. */
  betsPath?: string;
  /** The agencies' input files (`agency-N.csv`), checked against the last run: sent whole, winners. */
  dataDir?: string;
}

/** The process name of unprefixed lines: the file's name (`run/client-3.log` -> `client-3`). */
export function sourceName(input: string, several: boolean): string {
  if (input === '-') return 'stdin';
  const base = basename(input).replace(/\.(log|txt|jsonl?)$/i, '');
  return several || base !== '' ? base : 'log';
}

export async function analyse(inputs: Input[], opts: AnalyseOptions = {}): Promise<{ reports: RunReport[]; lines: number }> {
  const entries: Entry[] = [];
  const others: OtherLine[] = [];
  const exits = new Map<string, number>();
  let index = 0;
  for (const input of inputs) {
    const read = readLines(input.text, sourceName(input.name, inputs.length > 1), index);
    entries.push(...read.entries);
    others.push(...read.others);
    for (const [name, code] of read.exits) exits.set(name, code);
    index += read.entries.length + read.others.length + 1;
  }
  const all = lifetimes(entries, others);
  for (const name of new Set(all.map((l) => l.name))) {
    const last = all.filter((l) => l.name === name).at(-1)!;
    last.exitCode = opts.exits?.get(name) ?? exits.get(name) ?? null;
    last.running = opts.running?.has(name) ?? false;
  }
  const betsFile = opts.betsPath === undefined ? null : await countBetsFile(opts.betsPath);
  const grouped = runs(all);
  const reports = grouped.map((run, i) => {
    const t = tally(run);
    const checks = [...checkRun(t), failsExplained(t), processesExited(t)];
    const recovery = checkRecovery(t, t.starts);
    if (recovery !== null) checks.push(recovery);
    const totals = checkClientTotals(t);
    if (totals !== null) checks.push(totals);
    if (betsFile !== null && i === grouped.length - 1) checks.push(...checkBetsFile(t, betsFile, opts.betsPath!));
    return { tally: t, checks };
  });
  const last = reports.at(-1);
  if (opts.dataDir !== undefined && last !== undefined) {
    const inputs = await countInputs(
      opts.dataDir,
      last.tally.agencies.map((a) => a.agency),
    );
    last.checks.push(checkInputs(last.tally, inputs, opts.dataDir));
  }
  return { reports, lines: entries.length };
}
