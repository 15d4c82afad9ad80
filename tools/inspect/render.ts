/** The report: one block of tables per run and its invariants, as text for people or JSON for machines. */
import type { Check } from './checks.js';
import { storedBets, type AgencyTally, type Ending, type RunTally } from './tally.js';

export interface RunReport {
  tally: RunTally;
  checks: Check[];
}

const MAX_EVIDENCE = 12;
const clock = (ms: number | null): string => (ms === null ? '?' : new Date(ms).toISOString().replace('T', ' ').slice(0, 23));

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (/^[\d/ -]*\d[\d/ -]*$/.test(c) && i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join(' | ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-+-'), ...rows.map(line)];
}

const yes = (b: boolean): string => (b ? 'yes' : 'no');
const orDash = (n: number | null): string => (n === null ? '-' : String(n));

function exitText(e: Ending | undefined): string {
  if (e === undefined) return '-';
  if (e.configFail !== null) return `${e.code ?? 2} config fail`;
  if (e.exit === null)
    return e.running ? 'running' : e.code !== null ? `${e.code}, no exit line` : e.killed ? 'killed, started again' : 'no exit line';
  const code = e.code === null ? '?' : String(e.code);
  return `${code}${e.signal !== null ? ` ${e.signal}` : ''}${e.exit.result === 'fail' ? ` fail: ${e.exit.fields.error ?? ''}` : ''}`;
}

function agencyRow(t: RunTally, a: AgencyTally): string[] {
  const sentBatches = a.acked.batches + a.refusedByClient.batches;
  const sentBets = Math.max(a.acked.bets + a.refusedByClient.bets, Number(a.exitTotals.enviadas ?? 0) || 0);
  const last = a.clients.at(-1);
  return [
    String(a.agency),
    a.clients.map((c) => c.name).join(',') || '-',
    String(sentBatches),
    String(sentBets),
    String(a.acked.bets),
    a.recovered.empty ? String(a.stored.bets) : `${storedBets(a)} (${a.recovered.size} no line)`,
    `${a.duplicates.batches}/${a.duplicates.bets}`,
    `${a.refusedByServer.bets}/${a.refusedByClient.bets}`,
    `${yes(a.finishedClient)}/${yes(a.finishedServer)}`,
    `${orDash(a.winnersClient)}/${orDash(a.winnersServer)}`,
    exitText(last === undefined ? undefined : t.endings.get(last)),
  ];
}

function drawLine(t: RunTally): string {
  const d = t.draw;
  const finished = `${d.finished} of ${d.expected ?? '?'} agencies finished`;
  const s = d.successes[0];
  const recovered = t.recoveries.some((r) => r.entry.fields.sorteo === 'done');
  if (s === undefined && recovered) return `draw: recovered as done by a server start, not run again (${finished})`;
  if (s === undefined) return `draw: not run (${finished}; ${d.started} started, ${d.failures.length} failed)`;
  const times = d.successes.length === 1 ? '1 time' : `${d.successes.length} TIMES`;
  const ms = s.fields.duracion_ms === undefined ? '' : `, ${s.fields.duracion_ms} ms`;
  return `draw: ${times} (${finished}; ${d.started} started), ${s.fields.apuestas ?? '?'} bets scanned, ${s.fields.ganadores ?? '?'} winners${ms}`;
}

export function renderText(reports: RunReport[], betsPath: string | null): string {
  const out: string[] = [];
  for (const { tally: t, checks } of reports) {
    const all = [...t.run.servers, ...t.run.clients];
    const starts = all.map((l) => l.start).filter((x): x is number => x !== null);
    const ends = all.map((l) => l.end).filter((x): x is number => x !== null);
    out.push(
      `run ${t.run.index}: ${t.run.servers.length} server lifetime(s), ${t.run.clients.length} client(s); ${clock(starts.length ? Math.min(...starts) : null)} -> ${clock(ends.length ? Math.max(...ends) : null)} UTC`,
      '',
    );
    const head = [
      'agency',
      'client',
      'batches',
      'bets sent',
      'acked',
      'stored',
      'dup b/bets',
      'refused s/c',
      'FINISHED c/s',
      'winners c/s',
      'exit',
    ];
    out.push(
      ...table(
        head,
        t.agencies.map((a) => agencyRow(t, a)),
      ),
      '',
      drawLine(t),
      '',
    );
    const procs = all.map((l) => {
      const e = t.endings.get(l)!;
      return [l.name, l.role, e.signal ?? '-', e.sequence.join(' > ') || '-', exitText(e)];
    });
    out.push(...table(['process', 'role', 'signal', 'shutdown sequence', 'exit'], procs), '');
    const others = t.run.others.map((o) => `${o.name} (${o.entries.length + o.others.length} lines)`);
    if (others.length > 0) out.push(`not checked (neither server nor client): ${others.join(', ')}`, '');
    if (betsPath !== null && t === reports.at(-1)?.tally) out.push(`bets file: ${betsPath}`);
    out.push('invariants:');
    for (const c of checks) {
      out.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.title}`);
      const shown = c.evidence.slice(0, MAX_EVIDENCE);
      for (const e of shown) out.push(`         ${e}`);
      if (c.evidence.length > shown.length) out.push(`         ... ${c.evidence.length - shown.length} more (--json lists all)`);
    }
    out.push('');
  }
  const failed = reports.flatMap((r) => r.checks.filter((c) => !c.ok));
  out.push(failed.length === 0 ? 'all invariants ok' : `${failed.length} invariant(s) FAILED: ${failed.map((c) => c.id).join(', ')}`);
  return `${out.join('\n')}\n`;
}

export function toJson(reports: RunReport[]): unknown {
  return {
    ok: reports.every((r) => r.checks.every((c) => c.ok)),
    runs: reports.map(({ tally: t, checks }) => ({
      run: t.run.index,
      agencies: t.agencies.map((a) => ({
        agency: a.agency,
        clients: a.clients.map((c) => c.name),
        batchesSent: a.acked.batches + a.refusedByClient.batches,
        betsSent: a.acked.bets + a.refusedByClient.bets,
        batchesAcknowledged: a.acked.batches,
        betsAcknowledged: a.acked.bets,
        batchesStored: a.stored.batches,
        betsStored: storedBets(a),
        betsStoredWithoutLine: a.recovered.size,
        duplicates: { batches: a.duplicates.batches, bets: a.duplicates.bets },
        refused: { server: a.refusedByServer.bets, client: a.refusedByClient.bets },
        finished: { client: a.finishedClient, server: a.finishedServer },
        winners: { client: a.winnersClient, server: a.winnersServer },
        exitTotals: a.exitTotals,
      })),
      draw: {
        expected: t.draw.expected,
        finished: t.draw.finished,
        started: t.draw.started,
        successes: t.draw.successes.length,
        failures: t.draw.failures.length,
        betsScanned: t.draw.successes[0] === undefined ? null : Number(t.draw.successes[0].fields.apuestas),
        winners: t.draw.successes[0] === undefined ? null : Number(t.draw.successes[0].fields.ganadores),
      },
      processes: [...t.run.servers, ...t.run.clients].map((l) => {
        const e = t.endings.get(l)!;
        return {
          name: l.name,
          role: l.role,
          agency: l.agency,
          signal: e.signal,
          shutdown: e.sequence,
          exit: e.exit === null ? null : { result: e.exit.result, ...e.exit.fields },
          exitCode: e.code,
          exitCodeFrom: e.codeFrom,
          running: e.running,
          configError: e.configFail?.fields.error ?? null,
        };
      }),
      invariants: checks,
    })),
  };
}
