/**
 * Node child processes for the tests, the benchmarks and the tools (run-local), written once:
 * spawn a script, keep its output as lines (each with its arrival time) or send it straight
 * to a file, wait for a line or the exit without polling, stop it, and never leave one
 * behind (`killAll`, or `killAllOnExit` for a program that may be interrupted).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { parseLogLine, type LogLine } from '../../shared/logging/parse.js';
import { withDeadline } from '../../shared/util/async.js';

/**
 * Node flags of the agency client, wherever it is started (the tests, run-local, the bench;
 * the Dockerfile's CMD and package.json's `client` script repeat them). With the optimising
 * compiler on a background thread, a client on a machine whose cores are all busy keeps its
 * row loop in the interpreter until that thread gets a core; compiling on the main thread
 * costs less CPU in all (docs/benchmarks.md). V8 leaves this flag out of the check of its
 * code caches, Node's own and the bundle's; a flag it counts there (such as a heap size)
 * would make every start compile Node's built-in modules from source.
 */
export const CLIENT_NODE_FLAGS: readonly string[] = ['--no-concurrent-recompilation'];

/** The built client's start-up snapshot, relative to the repository root (tools/bundle.ts). */
export const CLIENT_BLOB = 'dist/client/client.blob';

/**
 * Node's arguments that start the built client under `root`: from its start-up snapshot when
 * the build wrote one, else from `entry` (dist/client/main.cjs, or main.js in a tree built
 * before the entry points became CommonJS).
 */
export function clientArgs(root: string, entry = 'dist/client/main.cjs'): string[] {
  const blob = join(root, CLIENT_BLOB);
  return [...CLIENT_NODE_FLAGS, ...(existsSync(blob) ? ['--snapshot-blob', blob] : [join(root, entry)])];
}

/** Epoch milliseconds with sub-millisecond precision; comparable with pino's `time` field. */
export const now = (): number => performance.timeOrigin + performance.now();

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  name: string;
  /** Node flags, the script, then its arguments. */
  args: string[];
  env: Record<string, string | undefined>;
  cwd?: string;
  /** stdout and stderr go to this file, opened for appending, and not through this process; otherwise they are kept as lines. */
  logFile?: string;
  /** Hears each line as it arrives (not with logFile). */
  onLine?: (line: string) => void;
  /** SIGKILL once this long has passed. */
  timeoutMs?: number;
  /** A command that execs node (e.g. `['taskset', '-c', '1']`): the child's pid is node's. */
  wrapper?: string[];
  /**
   * Its own process group: a terminal's Ctrl-C reaches only the parent, which then decides
   * what each child gets (one signal each, never a second that would cut a drain short).
   */
  detached?: boolean;
}

type Waiter = { match: (line: string) => boolean; resolve: (hit: { line: string; at: number }) => void; reject: (e: Error) => void };

const live = new Set<NodeProcess>();

/** One child process; stdout and stderr lines interleaved in arrival order. */
export class NodeProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly startedAt = now();
  readonly lines: string[] = [];
  /** Resolves once the process has exited and its output is all in `lines`. */
  readonly exited: Promise<Exit>;
  exit: Exit | null = null;
  /** When the process exited (`now()` time), NaN until then. */
  exitedAt = Number.NaN;
  /** Killed by `timeoutMs`. */
  timedOut = false;
  readonly #times: number[] = [];
  readonly #waiters = new Set<Waiter>();
  readonly #onLine: (line: string) => void;
  #partial = '';

  constructor(opts: StartOptions) {
    this.name = opts.name;
    this.#onLine = opts.onLine ?? (() => {});
    const fd = opts.logFile === undefined ? null : openSync(opts.logFile, 'a');
    const stdio: StdioOptions = fd === null ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd];
    const [command, ...prefix] = [...(opts.wrapper ?? []), process.execPath];
    this.child = spawn(command!, [...prefix, ...opts.args], { cwd: opts.cwd, env: opts.env, stdio, detached: opts.detached === true });
    if (fd !== null) closeSync(fd);
    live.add(this);
    for (const out of [this.child.stdout, this.child.stderr]) out?.setEncoding('utf8').on('data', (s: string) => this.#onText(s));
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => this.#kill(), opts.timeoutMs);
    this.child.once('exit', () => {
      this.exitedAt = now();
      clearTimeout(timer);
    });
    this.child.once('error', () => {}); // a failed spawn ends in 'close' too
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        if (this.#partial !== '') this.#add(this.#partial);
        this.#partial = '';
        this.exit = { code, signal };
        live.delete(this);
        for (const w of this.#waiters)
          w.reject(new Error(`${this.name} exited (${code ?? signal}) before the awaited line:\n${this.text}`));
        this.#waiters.clear();
        resolve(this.exit);
      });
    });
  }

  #kill(): void {
    this.timedOut = true;
    this.signal('SIGKILL');
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }
  get text(): string {
    return this.lines.join('\n');
  }
  /** Lines in the course's `action: X | result: Y` shape, parsed the graders' way. */
  get log(): LogLine[] {
    return this.lines.map(parseLogLine).filter((l): l is LogLine => l !== null);
  }

  #onText(s: string): void {
    const parts = (this.#partial + s).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const line of parts) this.#add(line);
  }

  #add(line: string): void {
    const at = now();
    this.lines.push(line);
    this.#times.push(at);
    this.#onLine(line);
    for (const w of this.#waiters) {
      if (!w.match(line)) continue;
      this.#waiters.delete(w);
      w.resolve({ line, at });
    }
  }

  /** The first line (already seen or to come) that `match` accepts, with the time it arrived. */
  waitForLine(match: (line: string) => boolean, timeoutMs = 30_000): Promise<{ line: string; at: number }> {
    const i = this.lines.findIndex(match);
    if (i >= 0) return Promise.resolve({ line: this.lines[i]!, at: this.#times[i]! });
    if (this.exit !== null)
      return Promise.reject(new Error(`${this.name} already exited (${this.exit.code ?? this.exit.signal}):\n${this.text}`));
    let waiter: Waiter | undefined;
    const hit = new Promise<{ line: string; at: number }>((resolve, reject) => {
      waiter = { match, resolve, reject };
      this.#waiters.add(waiter);
    });
    return withDeadline(hit, timeoutMs, () => {
      this.#waiters.delete(waiter!);
      return new Error(`${this.name}: no such line within ${timeoutMs} ms; output so far:\n${this.text}`);
    });
  }

  /** The first log line (already seen or to come) that `match` accepts. */
  async waitFor(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine> {
    const { line } = await this.waitForLine((text) => {
      const l = parseLogLine(text);
      return l !== null && match(l);
    }, timeoutMs);
    return parseLogLine(line)!;
  }

  waitForAction(action: string, result?: string, timeoutMs?: number): Promise<LogLine> {
    return this.waitFor((l) => l.action === action && (result === undefined || l.result === result), timeoutMs);
  }

  /** Waits for the exit, failing (with the output) if it takes longer than `timeoutMs`. */
  waitExit(timeoutMs = 30_000): Promise<Exit> {
    return withDeadline(
      this.exited,
      timeoutMs,
      () => new Error(`${this.name} still running after ${timeoutMs} ms; output so far:\n${this.text}`),
    );
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exit === null && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL if the process has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<Exit> {
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Index of the first log line with this action (and result), or -1. */
  indexOf(action: string, result?: string): number {
    return this.log.findIndex((l) => l.action === action && (result === undefined || l.result === result));
  }

  count(action: string, result?: string): number {
    return this.log.filter((l) => l.action === action && (result === undefined || l.result === result)).length;
  }
}

/** SIGKILLs every child still running and waits for them to be gone. */
export async function killAll(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.signal('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
}

let hooked = false;

/** For a program that may be interrupted: its children die with it (on exit, SIGINT, SIGTERM). */
export function killAllOnExit(): void {
  if (hooked) return;
  hooked = true;
  const kill = (): void => {
    for (const p of live) p.signal('SIGKILL');
  };
  process.on('exit', kill);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      kill();
      process.exit(130);
    });
  }
}
