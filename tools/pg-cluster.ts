/**
 * A throwaway PostgreSQL cluster for tests, benchmarks and local runs: initdb in a temp
 * directory, a postmaster on 127.0.0.1 only (its unix socket inside that directory, on a free
 * port), and stop() that stops it and removes the directory. PostgreSQL refuses to run as
 * root, so as root every binary runs as the `postgres` user through runuser and the directory
 * is handed to that user. Nothing here is used by the server itself.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../shared/util/net.js';

const run = promisify(execFile);
// Beside this file in the source tree, two levels up from dist/tools/ once compiled.
const ENSURE_SCRIPT = [new URL('./ensure-postgres.sh', import.meta.url), new URL('../../tools/ensure-postgres.sh', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p));
const PG_USER = 'postgres';

export class PostgresUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PostgresUnavailableError';
  }
}

/** The bin directory holding initdb and pg_ctl (PG_BIN, then PostgreSQL 15, then any version), or null. */
export function findPostgresBin(): string | null {
  const candidates = [process.env.PG_BIN, '/usr/lib/postgresql/15/bin'];
  if (existsSync('/usr/lib/postgresql'))
    for (const v of readdirSync('/usr/lib/postgresql')) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  return candidates.find((d) => d !== undefined && existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}

/**
 * The bin directory, installing PostgreSQL with tools/ensure-postgres.sh (apt-get, as root)
 * when it is missing; throws PostgresUnavailableError with the script's advice when it cannot.
 */
export function ensurePostgresBin(): string {
  const found = findPostgresBin();
  if (found !== null) return found;
  if (ENSURE_SCRIPT === undefined)
    throw new PostgresUnavailableError(
      'PostgreSQL server binaries are missing (no initdb/pg_ctl under /usr/lib/postgresql/*/bin): install postgresql or set PG_BIN',
    );
  try {
    return execFileSync('bash', [ENSURE_SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new PostgresUnavailableError(
      `PostgreSQL server binaries are missing and could not be installed: ${(e.stderr ?? e.message).trim()}`,
    );
  }
}

const asRoot = (): boolean => process.getuid?.() === 0;

function userIds(): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', PG_USER], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', PG_USER], { encoding: 'utf8' }));
  return { uid, gid };
}

/** argv for `bin/tool args`, run as the postgres user when we are root. */
function command(bin: string, tool: string, args: string[]): [string, string[]] {
  const path = join(bin, tool);
  return asRoot() ? ['runuser', ['-u', PG_USER, '--', path, ...args]] : [path, args];
}

async function pgTool(bin: string, tool: string, args: string[]): Promise<string> {
  const [file, argv] = command(bin, tool, args);
  try {
    const { stdout } = await run(file, argv, { encoding: 'utf8', timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${tool} ${args.join(' ')} failed: ${`${e.stderr ?? ''}${e.stdout ?? ''}`.trim() || e.message}`);
  }
}

/**
 * A detached shell that outlives this process: once our pid is gone (killed, even by
 * SIGKILL, before stop() ran) it stops the cluster, if it runs, and removes the directory.
 */
class Watchdog {
  readonly #pid: number | undefined;

  constructor(bin: string, dir: string) {
    const [file, argv] = command(bin, 'pg_ctl', ['stop', '-D', join(dir, 'data'), '-m', 'immediate', '-w']);
    const script = 'parent=$1; shift; while kill -0 "$parent" 2>/dev/null; do sleep 1; done; "$@" >/dev/null 2>&1; rm -rf "$PG_DIR"';
    const child = spawn('bash', ['-c', script, 'pg-watchdog', String(process.pid), file, ...argv], {
      detached: true,
      stdio: 'ignore',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PG_DIR: dir },
    });
    child.unref();
    this.#pid = child.pid;
  }

  /** The whole group (detached: its own): the shell and the `sleep` it waits on, which would outlive it. */
  stop(): void {
    try {
      if (this.#pid !== undefined) process.kill(-this.#pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }
}

export interface ClusterOptions {
  /** fsync and full-page writes off (default): safe unless the machine itself crashes; tests only. */
  readonly fast?: boolean;
  readonly maxConnections?: number;
}

export class PgCluster {
  readonly #bin: string;
  readonly #dir: string;
  readonly #port: number;
  readonly #options: string;
  #stopped: Promise<void> | null = null;
  readonly #watchdog: Watchdog;
  readonly #onExit = (): void => this.#stopSync();

  private constructor(bin: string, dir: string, port: number, options: string, watchdog: Watchdog) {
    this.#watchdog = watchdog;
    this.#bin = bin;
    this.#dir = dir;
    this.#port = port;
    this.#options = options;
    process.once('exit', this.#onExit);
  }

  /** initdb + pg_ctl start; on any failure the directory is removed before the error is thrown. */
  static async start(opts: ClusterOptions = {}): Promise<PgCluster> {
    const bin = ensurePostgresBin();
    const base = process.env.PG_TMPDIR ?? (asRoot() ? '/tmp' : tmpdir());
    const dir = await mkdtemp(join(base, 'loteria-pg-'));
    const watchdog = new Watchdog(bin, dir);
    try {
      if (asRoot()) {
        const { uid, gid } = userIds();
        chownSync(dir, uid, gid);
      }
      const initArgs = ['-D', join(dir, 'data'), '-A', 'trust', '-U', PG_USER, '-E', 'UTF8', '--locale=C', '--no-instructions'];
      await pgTool(bin, 'initdb', opts.fast === false ? initArgs : [...initArgs, '--no-sync']);
      return await PgCluster.#listen(bin, dir, opts, watchdog);
    } catch (err) {
      watchdog.stop();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Starts the postmaster on a free port; a port taken meanwhile by someone else is retried. */
  static async #listen(bin: string, dir: string, opts: ClusterOptions, watchdog: Watchdog): Promise<PgCluster> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const settings = [
        'listen_addresses=127.0.0.1',
        `port=${port}`,
        `unix_socket_directories=${dir}`,
        `max_connections=${opts.maxConnections ?? 100}`,
        ...(opts.fast === false ? [] : ['fsync=off', 'full_page_writes=off']),
      ];
      const options = settings.map((s) => `-c ${s}`).join(' ');
      const cluster = new PgCluster(bin, dir, port, options, watchdog);
      try {
        await cluster.#pgCtl(['start', '-w', '-t', '60', '-o', options]);
        return cluster;
      } catch (err) {
        process.removeListener('exit', cluster.#onExit);
        if (attempt >= 3 || !/already in use|could not bind/i.test(cluster.serverLog())) throw err;
      }
    }
  }

  get port(): number {
    return this.#port;
  }
  get dir(): string {
    return this.#dir;
  }
  /** The maintenance database's URL (superuser `postgres`, no password: trust on loopback). */
  get url(): string {
    return this.urlFor('postgres');
  }
  urlFor(database: string): string {
    return `postgresql://${PG_USER}@127.0.0.1:${this.#port}/${database}`;
  }

  /** The server's log so far (for failure messages). */
  serverLog(): string {
    try {
      return readFileSync(join(this.#dir, 'server.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Creates a fresh database and returns its URL. */
  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
      throw new RangeError(`database name ${JSON.stringify(name)}: use lower-case letters, digits and _`);
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${name}`);
    } finally {
      await client.end();
    }
    return this.urlFor(name);
  }

  /** `pg_ctl restart -m <mode>`: every connection is cut; the data survives. */
  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.#pgCtl(['restart', '-m', mode, '-w', '-t', '60', '-o', this.#options]);
  }

  /** Stops the postmaster and removes the directory; idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    process.removeListener('exit', this.#onExit);
    this.#watchdog.stop();
    try {
      await this.#pgCtl(['stop', '-m', 'fast', '-w', '-t', '30']);
    } catch {
      // Already stopped or never started: the directory goes either way.
    }
    await rm(this.#dir, { recursive: true, force: true });
  }

  /** Last resort when the process exits without stop(): an immediate stop, then the directory. */
  #stopSync(): void {
    try {
      const [file, argv] = command(this.#bin, 'pg_ctl', ['stop', '-D', join(this.#dir, 'data'), '-m', 'immediate', '-w']);
      execFileSync(file, argv, { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // Nothing more can be done while exiting.
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #pgCtl(args: string[]): Promise<string> {
    return pgTool(this.#bin, 'pg_ctl', [...args, '-D', join(this.#dir, 'data'), '-l', join(this.#dir, 'server.log')]);
  }
}
