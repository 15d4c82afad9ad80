/**
 * The log inspector (dist/tools/inspect/main.js) run as a user runs it, for
 * test/inspect.test.ts and test/inspect-restart.test.ts: its exit code, its text or --json
 * report, and the few lookups the tests make in that report.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './processes.js';

export const MAIN = join(ROOT, 'dist/tools/inspect/main.js');
export const FIX = join(ROOT, 'test/fixtures/logs');

export interface Check {
  id: string;
  ok: boolean;
  evidence: string[];
}
export interface Report {
  ok: boolean;
  runs: Array<{
    agencies: Array<{
      agency: number;
      betsAcknowledged: number;
      betsStored: number;
      betsStoredWithoutLine: number;
      duplicates: { batches: number; bets: number };
      finished: { client: boolean; server: boolean };
      winners: { client: number | null; server: number | null };
    }>;
    draw: { successes: number; betsScanned: number | null; winners: number | null };
    processes: Array<{ name: string; signal: string | null; shutdown: string[]; exitCode: number | null; configError: string | null }>;
    invariants: Check[];
  }>;
}

export function run(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

export async function report(args: string[], stdin?: string): Promise<{ code: number | null; r: Report }> {
  const { code, stdout, stderr } = await run([...args, '--json'], stdin);
  if (stdout === '') throw new Error(`no report (exit ${code}): ${stderr}`);
  return { code, r: JSON.parse(stdout) as Report };
}

export const check = (r: Report, id: string, run = 0): Check => {
  const c = r.runs[run]!.invariants.find((x) => x.id === id);
  if (c === undefined) throw new Error(`no invariant ${id}`);
  return c;
};
export const failed = (r: Report): string[] => r.runs.flatMap((x) => x.invariants.filter((c) => !c.ok).map((c) => c.id));

/** Bets per agency in `action: <action> | result: success` lines, counted with a regex. */
export function sumBets(text: string, who: RegExp, action: string): number {
  let n = 0;
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (!who.test(line) || !line.includes(`action: ${action} | result: success`) || seen.has(line)) continue;
    seen.add(line);
    n += Number(/cantidad: (\d+)/.exec(line)?.[1] ?? 0);
  }
  return n;
}
