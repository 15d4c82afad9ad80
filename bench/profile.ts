/**
 * One profiled run (node --cpu-prof on the server with SERVER_WORKERS=0, so every batch is
 * decoded, validated and written on the profiled main thread, and on one real client):
 * self time summed by function and by area (package, project file, GC, idle).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DataSet } from './data.js';
import { ClientKind, runOnce, type LogFormat, type RunResult } from './run.js';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  pct: number;
}
/**
 * `callers`: time spent in native code and node internals, charged to the nearest calling
 * frame of the project or of a package (e.g. `writeBuffer <- sonic-boom` is log output).
 */
export interface ProfileSummary {
  who: string;
  totalMs: number;
  areas: ProfileEntry[];
  functions: ProfileEntry[];
  callers: ProfileEntry[];
}
export interface ProfileResult {
  scenario: string;
  run: RunResult;
  profiles: ProfileSummary[];
}

function area(url: string, fn: string): string {
  if (fn.startsWith('(')) return fn;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return pkg[1] as string;
  const own = /\/dist\/(.+)\.js$/.exec(url);
  if (own !== null) return own[1] as string;
  if (url.startsWith('node:')) return 'node internals';
  return url === '' ? '(native)' : url;
}

function top(map: Map<string, number>, total: number, n: number): ProfileEntry[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pct: Math.round((1000 * us) / total) / 10 }));
}

export function summarize(file: string, who: string): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n.callFrame]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const isOwnOrPackage = (url: string): boolean => url.includes('/dist/') || url.includes('node_modules/');
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  const callers = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const us = prof.timeDeltas[i] ?? 0;
    const cf = byId.get(id);
    if (cf === undefined) return;
    total += us;
    const a = area(cf.url, cf.functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
    const name = `${cf.functionName || '(anonymous)'} ${a.startsWith('(') ? '' : `[${a}:${cf.lineNumber + 1}]`}`.trim();
    fns.set(name, (fns.get(name) ?? 0) + us);
    if (cf.functionName.startsWith('(') || isOwnOrPackage(cf.url)) return;
    let up = parent.get(id);
    while (up !== undefined && !isOwnOrPackage(byId.get(up)?.url ?? '')) up = parent.get(up);
    const caller = up === undefined ? undefined : byId.get(up);
    const key = `${cf.functionName || '(anonymous)'} <- ${caller === undefined ? '(no JS caller)' : `${caller.functionName || '(anonymous)'} [${area(caller.url, caller.functionName)}]`}`;
    callers.set(key, (callers.get(key) ?? 0) + us);
  });
  return {
    who,
    totalMs: Math.round(total / 1000),
    areas: top(areas, total, 12),
    functions: top(fns, total, 15),
    callers: top(callers, total, 12),
  };
}

export async function profileRun(
  data: DataSet,
  workDir: string,
  maxAmount: number,
  logFormat: LogFormat,
  repoRoot: string,
): Promise<ProfileResult> {
  const dir = mkdtempSync(join(workDir, 'profile-'));
  try {
    const serverDir = join(dir, 'server');
    const clientDir = join(dir, 'client');
    const run = await runOnce({
      data,
      workDir,
      client: ClientKind.REAL,
      workers: 0,
      maxAmount,
      timeoutMs: 600_000,
      logFormat,
      repoRoot,
      serverFlags: ['--cpu-prof', '--cpu-prof-dir', serverDir],
      clientFlags: ['--cpu-prof', '--cpu-prof-dir', clientDir],
      profiledClients: 1,
    });
    const profiles: ProfileSummary[] = [];
    for (const [who, d] of [
      ['server (SERVER_WORKERS=0)', serverDir],
      ['client (agency 1)', clientDir],
    ] as const) {
      const files = readdirSync(d).filter((f) => f.endsWith('.cpuprofile'));
      if (files[0] !== undefined) profiles.push(summarize(join(d, files[0]), who));
    }
    return { scenario: data.name, run, profiles };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
