/**
 * Child processes under measurement. Every child gets a hard timeout (SIGKILL), its memory
 * is sampled from /proc while it lives, and every child still alive when the bench exits is
 * killed. Times are epoch milliseconds with sub-millisecond precision (`now()`), so they
 * compare with the `time` field of pino's JSON lines.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';

export const now = (): number => performance.timeOrigin + performance.now();
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
  proc: ChildProcess;
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
  /** stdout and stderr go to this file; otherwise stdout is a pipe the caller reads. */
  logFile?: string;
  timeoutMs: number;
  pollMs?: number;
  /** Run on these CPUs only (`taskset -c`, which execs node: same pid). */
  cpus?: string;
}

const live = new Set<ChildProcess>();
let hooked = false;

function killAllOnExit(): void {
  if (hooked) return;
  hooked = true;
  const killAll = (): void => {
    for (const p of live) p.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
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

/** Whether `taskset` (util-linux) can pin processes to CPUs here. */
export function canPin(): boolean {
  return spawnSync('taskset', ['-c', '0', process.execPath, '-e', '0'], { stdio: 'ignore' }).status === 0;
}

/** CPU seconds of every reaped child of this process so far (cutime + cstime). */
export function reapedChildrenCpuS(): number {
  const f = statFields(readFileSync('/proc/self/stat', 'utf8'));
  return (Number(f[13]) + Number(f[14])) / CLK_TCK;
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
  const fd = opts.logFile === undefined ? null : openSync(opts.logFile, 'a');
  const stdio: StdioOptions = fd === null ? ['ignore', 'pipe', 'inherit'] : ['ignore', fd, fd];
  const startedAt = now();
  const [cmd, argv] =
    opts.cpus === undefined ? [process.execPath, opts.args] : ['taskset', ['-c', opts.cpus, process.execPath, ...opts.args]];
  const proc = spawn(cmd, argv, { env: opts.env, cwd: opts.cwd, stdio });
  if (fd !== null) closeSync(fd);
  live.add(proc);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill('SIGKILL');
  }, opts.timeoutMs);
  const child: Child = {
    name: opts.name,
    pid: proc.pid ?? -1,
    proc,
    startedAt,
    peakRssKb: 0,
    cpuS: 0,
    rssSeries: [],
    exited: null as unknown as Promise<ExitInfo>,
    sample(): void {
      const mem = readMemKb(child.pid);
      if (mem !== null) {
        child.peakRssKb = Math.max(child.peakRssKb, mem.hwm, mem.rss);
        const t = now() - startedAt;
        const last = child.rssSeries[child.rssSeries.length - 1];
        if (last === undefined || t - last[0] >= 1000) child.rssSeries.push([Math.round(t), mem.rss]);
      }
      const cpu = readCpuS(child.pid);
      if (cpu !== null) child.cpuS = cpu;
    },
  };
  const poll = setInterval(() => child.sample(), opts.pollMs ?? 50);
  child.exited = new Promise<ExitInfo>((resolve) => {
    proc.once('exit', (code, signal) => {
      const at = now();
      clearTimeout(timer);
      clearInterval(poll);
      live.delete(proc);
      resolve({ code, signal, at, timedOut });
    });
    proc.once('error', () => {
      /* reported through 'exit' */
    });
  });
  return child;
}

/** Sends SIGTERM, then SIGKILL if the child has not exited after `graceMs`. */
export async function stopChild(child: Child, graceMs = 10_000): Promise<ExitInfo> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves with the first stdout line of `child` that satisfies `match` (its arrival time too). */
export function waitForLine(child: Child, match: (line: string) => boolean, timeoutMs: number): Promise<{ line: string; at: number }> {
  const out = child.proc.stdout;
  if (out === null) return Promise.reject(new Error(`${child.name}: stdout is not a pipe`));
  return new Promise((resolve, reject) => {
    let rest = '';
    const timer = setTimeout(() => {
      out.off('data', onData);
      reject(new Error(`${child.name}: no matching line in ${timeoutMs} ms`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      const at = now();
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (match(line)) {
          clearTimeout(timer);
          out.off('data', onData);
          out.resume();
          resolve({ line, at });
          return;
        }
      }
    };
    out.on('data', onData);
    void child.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${child.name}: exited before the expected line`));
    });
  });
}
