/**
 * The built server and clients (dist/) as real processes for the process-level tests, on the
 * shared harness (tools/lib/processes.ts: lines, waits, killAll), plus temp dirs and readers
 * of the files a run leaves behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeProcess, clientArgs } from '../../tools/lib/processes.js';

export { killAll } from '../../tools/lib/processes.js';
export type Proc = NodeProcess;

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SERVER_MAIN = join(ROOT, 'dist/server/main.cjs');
export const SERVER_INI = join(ROOT, 'server/config.ini');
export const CLIENT_YAML = join(ROOT, 'client/config.yaml');
export const DATASET_ZIP = join(ROOT, '../shared/data/tp0/dataset.zip');

function spawnNode(name: string, args: readonly string[], env: Record<string, string>, wrapper?: string[]): Proc {
  return new NodeProcess({ name, args: [...args], env, cwd: ROOT, wrapper });
}

/**
 * Runs an ES module `script` in a Node without WebAssembly (`--jitless`), on the sources as the
 * tests import them (through tsx, not a build that may predate them); its stdout.
 */
export function evalJitless(script: string): string {
  const args = ['--jitless', '--no-warnings', '--import', 'tsx', '--input-type=module', '-e', script];
  return execFileSync(process.execPath, args, { encoding: 'utf8', cwd: ROOT });
}

/** A clean environment: nothing from the parent's SERVER_*, CLI_*, LOGGING_LEVEL or NODE_OPTIONS leaks in. */
export function baseEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), TMPDIR: tmpdir() };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export function spawnServer(env: Record<string, string | undefined>, name = 'server'): Proc {
  return spawnNode(name, [SERVER_MAIN], baseEnv({ SERVER_CONFIG: SERVER_INI, SERVER_HOST: '127.0.0.1', SERVER_AUTH: 'off', ...env }));
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
  name?: string;
}): Promise<StartedServer> {
  const proc = spawnServer(
    {
      SERVER_PORT: '0',
      SERVER_AGENCIES: String(opts.agencies),
      SERVER_STORAGE_PATH: opts.storagePath,
      ...opts.env,
    },
    opts.name,
  );
  const line = await proc.waitFor((l) => l.action === 'listen');
  if (line.result !== 'success') throw new Error(`server did not listen:\n${proc.text}`);
  const port = Number(line.fields.puerto);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in the listen line:\n${proc.text}`);
  return { proc, port };
}

/** `wrapper`: a command that execs node (StartOptions.wrapper). */
export function spawnClient(env: Record<string, string | undefined>, opts: { name?: string; wrapper?: string[] } = {}): Proc {
  const name = opts.name ?? `client-${env.CLI_ID ?? '?'}`;
  return spawnNode(name, clientArgs(ROOT), baseEnv({ CLI_CONFIG: CLIENT_YAML, ...env }), opts.wrapper);
}

export function startClient(opts: {
  port: number;
  id: number;
  dataFile: string;
  env?: Record<string, string | undefined>;
  wrapper?: string[];
}): Proc {
  const env = { CLI_SERVER_ADDRESS: `127.0.0.1:${opts.port}`, CLI_ID: String(opts.id), CLI_DATA_FILE: opts.dataFile, ...opts.env };
  return spawnClient(env, { wrapper: opts.wrapper });
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

/** Lines that report a failure (`result: fail`), with their reason (`error`, or a `desconexion`'s `motivo`). */
export function failures(proc: Proc, upTo = Infinity): string[] {
  return proc.log
    .slice(0, upTo)
    .filter((l) => l.result === 'fail')
    .map((l) => `${l.action}: ${l.fields.error ?? l.fields.motivo ?? ''}`);
}
