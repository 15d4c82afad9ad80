/**
 * Real processes for the process-level tests: the built server and clients (dist/), their
 * log lines as they arrive, and temp dirs. Every child spawned here is remembered until it
 * exits, so `killAll()` in afterEach/afterAll never leaves one behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseLogLine, type LogLine } from '../../shared/logging/parse.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SERVER_MAIN = join(ROOT, 'dist/server/main.js');
export const CLIENT_MAIN = join(ROOT, 'dist/client/main.js');
export const SERVER_INI = join(ROOT, 'server/config.ini');
export const CLIENT_YAML = join(ROOT, 'client/config.yaml');
export const DATASET_ZIP = join(ROOT, '../shared/data/tp0/dataset.zip');

const WAIT_MS = 30_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type Waiter = { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

/** One child process with its output split into lines (stdout and stderr interleaved). */
export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<Exit>;
  exit: Exit | null = null;
  #partial = '';
  readonly #waiters = new Set<Waiter>();

  constructor(name: string, script: string, env: Record<string, string>) {
    this.name = name;
    this.child = spawn(process.execPath, [script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (s: string) => this.#onText(s));
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => this.#onText(s));
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        if (this.#partial !== '') this.#onLine(this.#partial);
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
    for (const line of parts) this.#onLine(line);
  }

  #onLine(line: string): void {
    this.lines.push(line);
    const parsed = parseLogLine(line);
    if (parsed === null) return;
    for (const w of this.#waiters) {
      if (!w.match(parsed)) continue;
      clearTimeout(w.timer);
      this.#waiters.delete(w);
      w.resolve(parsed);
    }
  }

  /** Resolves with the first line (already seen or to come) that `match` accepts. */
  waitFor(match: (l: LogLine) => boolean, timeoutMs = WAIT_MS): Promise<LogLine> {
    const seen = this.log.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.exit !== null)
      return Promise.reject(new Error(`${this.name} already exited (${this.exit.code ?? this.exit.signal}):\n${this.text}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`${this.name}: no such line within ${timeoutMs} ms; output so far:\n${this.text}`));
      }, timeoutMs);
      const waiter: Waiter = { match, resolve, reject, timer };
      this.#waiters.add(waiter);
    });
  }

  waitForAction(action: string, result?: string, timeoutMs?: number): Promise<LogLine> {
    return this.waitFor((l) => l.action === action && (result === undefined || l.result === result), timeoutMs);
  }

  /** Waits for the exit, failing (with the output) if it takes longer than `timeoutMs`. */
  async waitExit(timeoutMs = WAIT_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} still running after ${timeoutMs} ms; output so far:\n${this.text}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exit === null) this.child.kill(sig);
  }

  /** Index of the first log line matching, or -1. */
  indexOf(action: string, result?: string): number {
    return this.log.findIndex((l) => l.action === action && (result === undefined || l.result === result));
  }

  count(action: string, result?: string): number {
    return this.log.filter((l) => l.action === action && (result === undefined || l.result === result)).length;
  }
}

const live = new Set<Proc>();

/** SIGKILLs every child still running and waits for them to be gone. */
export async function killAll(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.signal('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
}

/** A clean environment: nothing from the parent's SERVER_*, CLI_*, LOGGING_LEVEL or NODE_OPTIONS leaks in. */
export function baseEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), TMPDIR: tmpdir() };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export function spawnServer(env: Record<string, string | undefined>, name = 'server'): Proc {
  return new Proc(name, SERVER_MAIN, baseEnv({ SERVER_CONFIG: SERVER_INI, SERVER_HOST: '127.0.0.1', SERVER_AUTH: 'off', ...env }));
}

export interface StartedServer {
  proc: Proc;
  port: number;
}

/**
 * Starts a server (port 0 unless SERVER_PORT is given) storing into `storagePath` and
 * resolves once it listens, with the port read from its `listen` line.
 */
export async function startServer(opts: {
  storagePath: string;
  agencies: number;
  env?: Record<string, string | undefined>;
}): Promise<StartedServer> {
  const proc = spawnServer({
    SERVER_PORT: '0',
    SERVER_AGENCIES: String(opts.agencies),
    SERVER_STORAGE_PATH: opts.storagePath,
    ...opts.env,
  });
  const line = await proc.waitFor((l) => l.action === 'listen');
  if (line.result !== 'success') throw new Error(`server did not listen:\n${proc.text}`);
  const port = Number(line.fields.puerto);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in the listen line:\n${proc.text}`);
  return { proc, port };
}

export function spawnClient(env: Record<string, string | undefined>, name = `client-${env.CLI_ID ?? '?'}`): Proc {
  return new Proc(name, CLIENT_MAIN, baseEnv({ CLI_CONFIG: CLIENT_YAML, ...env }));
}

export function startClient(opts: { port: number; id: number; dataFile: string; env?: Record<string, string | undefined> }): Proc {
  return spawnClient({
    CLI_SERVER_ADDRESS: `127.0.0.1:${opts.port}`,
    CLI_ID: String(opts.id),
    CLI_DATA_FILE: opts.dataFile,
    ...opts.env,
  });
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `${prefix}-`));
}

export function removeDir(dir: string | undefined): Promise<void> {
  return dir === undefined ? Promise.resolve() : rm(dir, { recursive: true, force: true });
}

/** Records of an agency file (no header, no quoting): fields split on ',' and trimmed. */
export async function readAgencyRows(path: string): Promise<string[][]> {
  const text = (await readFile(path, 'utf8')).replace(/^\uFEFF/, '');
  return text
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(',').map((f) => f.trim()));
}

/** Rows in a CRLF file; throws if the last row has no line end (a torn write). */
export async function countStoredRows(path: string): Promise<number> {
  const text = await readFile(path, 'utf8');
  if (text === '') return 0;
  if (!text.endsWith('\r\n')) throw new Error(`${path}: last row has no CRLF: ${JSON.stringify(text.slice(-80))}`);
  return text.slice(0, -2).split('\r\n').length;
}

/** Lines that report a failure (`result: fail`). */
export function failures(proc: Proc, upTo = Infinity): string[] {
  return proc.log
    .slice(0, upTo)
    .filter((l) => l.result === 'fail')
    .map((l) => `${l.action}: ${l.fields.error ?? ''}`);
}
