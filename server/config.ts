/**
 * Server configuration: `server/config.ini` (section [DEFAULT], the course's layout),
 * each key overridden by the environment variable of the same name.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import ini from 'ini';
import { loadServerTls, type ServerTls } from '../shared/config/tls-files.js';
import { ConfigError, durationMs, intIn, layered, logLevel, nonEmpty, onOff } from '../shared/config/values.js';
import { type AgencyKeys, loadKeysFile } from './auth/keys-file.js';
import { DatabaseUrl } from './storage/database-url.js';

export const StorageKind = { FILE: 'file', POSTGRES: 'postgres' } as const;
export type StorageKind = (typeof StorageKind)[keyof typeof StorageKind];

export interface ServerConfig {
  host: string;
  port: number;
  backlog: number;
  agencies: number;
  /** The bets file (file storage only). */
  storagePath: string;
  /** SERVER_STORAGE: the bets file (one server) or PostgreSQL (several servers sharing a database). */
  storage: StorageKind;
  /** SERVER_DATABASE_URL (postgres only; null with file). Prints without its password. */
  database: DatabaseUrl | null;
  /** SERVER_ID: this server's name in the logs and in the draw's `drawnBy`; default hostname:port. */
  serverId: string;
  workers: number;
  logLevel: string;
  /** At most 8 s: shutdown must end inside Docker's 10 s grace period. */
  drainTimeoutMs: number;
  /** The Prometheus endpoint's port (0: any free port); null: no endpoint (the default). */
  metricsPort: number | null;
  /** Where the endpoint listens; SERVER_HOST unless set. */
  metricsHost: string;
  /**
   * SERVER_FSYNC: rows and journal records reach the disk before a batch is acknowledged (one
   * flush of each file per group commit); off acknowledges once they are handed to the kernel.
   */
  fsync: boolean;
  /** SERVER_AUTH: off only for local tests; then any 32 bytes pass as a proof. */
  auth: 'on' | 'off';
  /** The keys (SERVER_AGENCY_KEYS); null when auth is off. Prints as a count and a path. */
  agencyKeys: AgencyKeys | null;
  /** From accept to a valid PROOF (HELLO, CHALLENGE and PROOF all inside it). */
  authTimeoutMs: number;
  /** An authenticated session that receives nothing and holds no query for this long is closed. */
  idleTimeoutMs: number;
  /** Connections not yet authenticated, in all and per source address (an IPv6 /64 counts as one). */
  maxUnauthenticated: number;
  maxUnauthenticatedPerSource: number;
  /** SERVER_TLS_CERT + SERVER_TLS_KEY; null: plain TCP. */
  tls: ServerTls | null;
}

const DEFAULT_CONFIG_PATH = 'server/config.ini';

const DEFAULTS: Record<string, string> = {
  SERVER_HOST: '0.0.0.0',
  SERVER_PORT: '12345',
  SERVER_LISTEN_BACKLOG: '128',
  SERVER_AGENCIES: '5',
  SERVER_STORAGE: 'file',
  SERVER_STORAGE_PATH: './bets.csv',
  LOGGING_LEVEL: 'INFO',
  SERVER_DRAIN_TIMEOUT: '5s',
  SERVER_FSYNC: 'on',
  SERVER_AUTH: 'on',
  SERVER_AUTH_TIMEOUT: '5s',
  SERVER_IDLE_TIMEOUT: '60s',
  SERVER_MAX_UNAUTHENTICATED: '128',
  SERVER_MAX_UNAUTHENTICATED_PER_SOURCE: '16',
};

function readIni(path: string, required: boolean): Record<string, unknown> {
  if (!existsSync(path)) {
    if (required) throw new ConfigError('SERVER_CONFIG', `file ${path} does not exist; point SERVER_CONFIG at a readable .ini file`);
    return {};
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = ini.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError('SERVER_CONFIG', `cannot read ${path}: ${(err as Error).message}`);
  }
  const section = (parsed.DEFAULT ?? {}) as Record<string, unknown>;
  const top = Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v !== 'object'));
  return { ...top, ...section };
}

/**
 * One worker per core the main thread leaves free (at least one): the main thread is busy
 * with every socket, and on 2 cores a second worker bought no speed and cost memory
 * (docs/benchmarks.md).
 */
export function defaultWorkers(cores = availableParallelism()): number {
  return Math.max(1, cores - 1);
}

/** SERVER_METRICS_PORT (empty: off) and SERVER_METRICS_HOST (empty: the server's host). */
function metricsSettings(get: (key: string) => string, host: string, port: number): Pick<ServerConfig, 'metricsPort' | 'metricsHost'> {
  const raw = get('SERVER_METRICS_PORT').trim();
  const metricsPort = raw === '' ? null : intIn('SERVER_METRICS_PORT', raw, 0, 65535);
  if (metricsPort !== null && metricsPort !== 0 && metricsPort === port)
    throw new ConfigError(
      'SERVER_METRICS_PORT',
      `${metricsPort} is SERVER_PORT too; give the metrics endpoint a port of its own, or leave it empty (off)`,
    );
  return { metricsPort, metricsHost: get('SERVER_METRICS_HOST').trim() || host };
}

/** Reads file then environment; throws ConfigError naming the first bad key. */
export function loadServerConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const path = env.SERVER_CONFIG ?? DEFAULT_CONFIG_PATH;
  const file = readIni(path, env.SERVER_CONFIG !== undefined);
  const get = (key: string): string => layered(env[key], file[key], DEFAULTS[key]);
  const workers = get('SERVER_WORKERS');
  const host = nonEmpty('SERVER_HOST', get('SERVER_HOST'));
  const port = intIn('SERVER_PORT', get('SERVER_PORT'), 0, 65535);
  const agencies = intIn('SERVER_AGENCIES', get('SERVER_AGENCIES'), 1, 100_000);
  const auth = onOff('SERVER_AUTH', get('SERVER_AUTH')) ? 'on' : 'off';
  const maxUnauthenticated = intIn('SERVER_MAX_UNAUTHENTICATED', get('SERVER_MAX_UNAUTHENTICATED'), 1, 100_000);
  const storage = storageKind(layered(env.SERVER_STORAGE, iniStorage(file, path), DEFAULTS.SERVER_STORAGE));
  return {
    host,
    port,
    backlog: intIn('SERVER_LISTEN_BACKLOG', get('SERVER_LISTEN_BACKLOG'), 1, 65535),
    agencies,
    storagePath: nonEmpty('SERVER_STORAGE_PATH', get('SERVER_STORAGE_PATH')),
    storage,
    database: databaseUrl(storage, get('SERVER_DATABASE_URL')),
    serverId: get('SERVER_ID').trim() || `${hostname()}:${port === 0 ? `pid${process.pid}` : port}`,
    workers: workers === '' ? defaultWorkers() : intIn('SERVER_WORKERS', workers, 0, 256),
    logLevel: logLevel('LOGGING_LEVEL', get('LOGGING_LEVEL')),
    drainTimeoutMs: durationMs('SERVER_DRAIN_TIMEOUT', get('SERVER_DRAIN_TIMEOUT'), 8_000),
    ...metricsSettings(get, host, port),
    fsync: onOff('SERVER_FSYNC', get('SERVER_FSYNC')),
    auth,
    agencyKeys: auth === 'on' ? agencyKeys(get('SERVER_AGENCY_KEYS'), agencies) : null,
    authTimeoutMs: positiveDuration('SERVER_AUTH_TIMEOUT', get('SERVER_AUTH_TIMEOUT'), 60_000),
    idleTimeoutMs: positiveDuration('SERVER_IDLE_TIMEOUT', get('SERVER_IDLE_TIMEOUT'), 3_600_000),
    maxUnauthenticated,
    maxUnauthenticatedPerSource: intIn(
      'SERVER_MAX_UNAUTHENTICATED_PER_SOURCE',
      get('SERVER_MAX_UNAUTHENTICATED_PER_SOURCE'),
      1,
      maxUnauthenticated,
    ),
    tls: loadServerTls(get('SERVER_TLS_CERT').trim(), get('SERVER_TLS_KEY').trim()),
  };
}

/**
 * The ini file may name the storage `SERVER_STORAGE` (its convention) or `storage` (the run
 * tooling's spelling). A blank one does not hide the other, and two that disagree are refused:
 * otherwise a server meant for PostgreSQL could start on a bets file of its own.
 */
function iniStorage(file: Record<string, unknown>, path: string): string | undefined {
  const text = (v: unknown): string => (v === undefined || v === null ? '' : String(v).trim());
  const long = text(file.SERVER_STORAGE);
  const short = text(file.storage);
  if (long !== '' && short !== '' && long.toLowerCase() !== short.toLowerCase())
    throw new ConfigError('SERVER_STORAGE', `${path} says both SERVER_STORAGE = ${long} and storage = ${short}; keep one of the two lines`);
  return long || short || undefined;
}

function storageKind(raw: string): StorageKind {
  const text = raw.trim().toLowerCase();
  if (text === StorageKind.FILE || text === StorageKind.POSTGRES) return text;
  throw new ConfigError(
    'SERVER_STORAGE',
    `${JSON.stringify(raw)} is not a storage; use file (the bets file, one server) or postgres (several servers, with SERVER_DATABASE_URL)`,
  );
}

function databaseUrl(storage: StorageKind, raw: string): DatabaseUrl | null {
  const text = raw.trim();
  if (storage === StorageKind.FILE) return null;
  if (text === '')
    throw new ConfigError(
      'SERVER_DATABASE_URL',
      'is empty but SERVER_STORAGE is postgres; give the database as postgres://user@host:port/database',
    );
  return DatabaseUrl.parse('SERVER_DATABASE_URL', text);
}

/** Secure by default: with auth on, the server does not start without a key for every agency. */
function agencyKeys(path: string, agencies: number): AgencyKeys {
  if (path.trim() === '')
    throw new ConfigError(
      'SERVER_AGENCY_KEYS',
      'is empty but SERVER_AUTH is on; point it at the keys file (make keys writes keys/agencies.keys), or set SERVER_AUTH=off for a local test without authentication',
    );
  return loadKeysFile(path.trim(), agencies);
}

function positiveDuration(key: string, raw: string, max: number): number {
  const ms = durationMs(key, raw, max);
  if (ms < 100) throw new ConfigError(key, `${raw} is too short; give at least 100ms`);
  return ms;
}
