/**
 * Child processes under measurement, on the shared harness (tools/lib/processes.ts): every
 * child gets a hard timeout (SIGKILL), its memory and CPU are sampled from /proc while it
 * lives, and every child still alive when the bench exits is killed. Times are `now()`
 * epoch milliseconds, so they compare with the `time` field of pino's JSON lines.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { NodeProcess, killAllOnExit, now } from '../tools/lib/processes.js';

export { now };

/**
 * A program's entry point in a built tree (`repoRoot` relative): dist/{client,server}/main.cjs,
 * or main.js in a tree built before the entry points became CommonJS (bench/compare.ts's --before).
 */
export function entryPoint(repoRoot: string, program: 'client' | 'server'): string {
  const cjs = `dist/${program}/main.cjs`;
  return existsSync(join(repoRoot, cjs)) ? cjs : `dist/${program}/main.js`;
}

/** Clock ticks per second of /proc stat times (USER_HZ; 100 on every Linux we run on). */
export const CLK_TCK = 100;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
  timedOut: boolean;
}

export interface Child {
  name: string;
  pid: number;
  process: NodeProcess;
  startedAt: number;
  exited: Promise<ExitInfo>;
  /** Largest VmHWM / VmRSS seen, in KiB (0 until the first sample). */
  peakRssKb: number;
  /** utime + stime of the whole process at the last sample, in seconds. */
  cpuS: number;
  /** [ms since start, VmRSS KiB], at most one sample a second. */
  rssSeries: Array<[number, number]>;
  /** Sample /proc now (also done every `pollMs`). */
  sample(): void;
}

export interface SpawnOptions {
  name: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr go to this file; otherwise they are kept as lines (`child.process.waitForLine`). */
  logFile?: string;
  timeoutMs: number;
  pollMs?: number;
  /** Run on these CPUs only (`taskset -c`, which execs node: same pid). */
  cpus?: string;
}

/** VmHWM (peak) and VmRSS of a live process in KiB; null once it is gone. */
export function readMemKb(pid: number): { hwm: number; rss: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    const rss = kb('VmRSS');
    // A zombie (exited, not yet reaped) has no memory lines left.
    return rss === 0 ? null : { hwm: kb('VmHWM'), rss };
  } catch {
    return null;
  }
}

/** Fields of a /proc stat line after the command name: index 0 is field 3 (state). */
function statFields(text: string): string[] {
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

export function readCpuS(pid: number | 'self', withChildren = false): number | null {
  try {
    const f = statFields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const own = Number(f[11]) + Number(f[12]);
    return (withChildren ? own + Number(f[13]) + Number(f[14]) : own) / CLK_TCK;
  } catch {
    return null;
  }
}

/** CPU seconds of every reaped child of this process so far (cutime + cstime). */
export function reapedChildrenCpuS(): number {
  const f = statFields(readFileSync('/proc/self/stat', 'utf8'));
  return (Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/**
 * CPU ms of the children reaped since `beforeS` (a reapedChildrenCpuS() reading), in whole ms:
 * the counters tick by 10 ms, and 1000 * (0.11 - 0.06) is 50.00000000000001, not 50.
 */
export function reapedChildrenCpuMsSince(beforeS: number): number {
  return Math.round(1000 * (reapedChildrenCpuS() - beforeS));
}

export interface ThreadCpu {
  tid: number;
  cpuS: number;
  startTicks: number;
}

/** CPU seconds of each live thread of `pid`, main thread (tid == pid) first. */
export function readThreadsCpu(pid: number): ThreadCpu[] {
  const out: ThreadCpu[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const f = statFields(readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'));
      out.push({ tid: Number(t), cpuS: (Number(f[11]) + Number(f[12])) / CLK_TCK, startTicks: Number(f[19]) });
    } catch {
      /* the thread ended between readdir and read */
    }
  }
  return out.sort((a, b) => (a.tid === pid ? -1 : b.tid === pid ? 1 : a.startTicks - b.startTicks || a.tid - b.tid));
}

export function spawnChild(opts: SpawnOptions): Child {
  killAllOnExit();
  const proc = new NodeProcess({
    name: opts.name,
    args: opts.args,
    env: opts.env,
    cwd: opts.cwd,
    logFile: opts.logFile,
    timeoutMs: opts.timeoutMs,
    wrapper: opts.cpus === undefined ? undefined : ['taskset', '-c', opts.cpus],
  });
  const child: Child = {
    name: opts.name,
    pid: proc.pid,
    process: proc,
    startedAt: proc.startedAt,
    peakRssKb: 0,
    cpuS: 0,
    rssSeries: [],
    exited: proc.exited.then((e) => ({ ...e, at: proc.exitedAt, timedOut: proc.timedOut })),
    sample(): void {
      const mem = readMemKb(child.pid);
      if (mem !== null) {
        child.peakRssKb = Math.max(child.peakRssKb, mem.hwm, mem.rss);
        const t = now() - child.startedAt;
        const last = child.rssSeries[child.rssSeries.length - 1];
        if (last === undefined || t - last[0] >= 1000) child.rssSeries.push([Math.round(t), mem.rss]);
      }
      const cpu = readCpuS(child.pid);
      if (cpu !== null) child.cpuS = cpu;
    },
  };
  const poll = setInterval(() => child.sample(), opts.pollMs ?? 50);
  proc.child.once('exit', () => clearInterval(poll));
  return child;
}

/** Whether `taskset` (util-linux) can pin processes to CPUs here. */
export function canPin(): boolean {
  return spawnSync('taskset', ['-c', '0', process.execPath, '-e', '0'], { stdio: 'ignore' }).status === 0;
}

/** Sends SIGTERM, then SIGKILL if the child has not exited after `graceMs`. */
export async function stopChild(child: Child, graceMs = 10_000): Promise<ExitInfo> {
  await child.process.stop(graceMs);
  return child.exited;
}

/** utime + stime, in seconds, of the cluster's postmaster and its children. */
export function databaseCpu(dir: string): Map<number, number> {
  const postmaster = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const cpu = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(entry) !== postmaster && Number(fields[1]) !== postmaster) continue;
      cpu.set(Number(entry), (Number(fields[11]) + Number(fields[12])) / CLK_TCK);
    } catch {
      // The process ended while we looked.
    }
  }
  return cpu;
}

export const cpuDelta = (before: Map<number, number>, after: Map<number, number>): number =>
  [...after].reduce((s, [pid, t]) => s + t - (before.get(pid) ?? 0), 0);
