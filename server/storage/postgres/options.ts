/**
 * The PostgreSQL backend's options, their defaults, and the connection settings every one of
 * its connections shares (the schema on the search_path, a name per server in
 * pg_stat_activity, TCP keepalive so a half-open connection is noticed).
 */
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from '../../../shared/logging/logger.js';
import { checkSchemaName } from './schema.js';

export interface PostgresBackendOptions {
  /** postgresql://user@host:port/database */
  readonly url: string;
  readonly agencies: number;
  /** Schema holding the tables (several lotteries may share a database). Default `loteria`. */
  readonly schema?: string;
  /** Names this server in the database (leases, the draw). Default `hostname:pid`. */
  readonly serverId?: string;
  /** Pooled connections (the listener has its own). Default 6. */
  readonly maxConnections?: number;
  /** Group commits in flight at once. Default 2. */
  readonly maxInFlight?: number;
  /** Bets per group commit at most. Default 50,000. */
  readonly maxGroupBets?: number;
  /** How long an operation retries while the database is unreachable (0: once). Default 15 s. */
  readonly retryMs?: number;
  /** How long open() waits for the database. Default 30 s. */
  readonly startTimeoutMs?: number;
  /** Aborted when the server is told to stop while open() still waits for the database. */
  readonly stop?: AbortSignal;
  readonly log?: Logger;
}

export type Options = Required<Omit<PostgresBackendOptions, 'log' | 'stop'>> & { log: Logger | undefined; stop: AbortSignal | undefined };

export function resolveOptions(options: PostgresBackendOptions): Options {
  const o: Options = {
    schema: 'loteria',
    serverId: `${hostname()}:${process.pid}`,
    maxConnections: 6,
    maxInFlight: 2,
    maxGroupBets: 50_000,
    retryMs: 15_000,
    startTimeoutMs: 30_000,
    ...options,
    log: options.log,
    stop: options.stop,
  };
  checkSchemaName(o.schema);
  return o;
}

/** `role` names the connection in pg_stat_activity: `role:serverId` (tests find the listener by it). */
export function clientConfig(o: Options, role: string): pg.ClientConfig {
  return {
    connectionString: o.url,
    options: `-c search_path=${o.schema}`,
    application_name: `${role}:${o.serverId}`.slice(0, 63),
    keepAlive: true,
    connectionTimeoutMillis: 5_000,
  };
}
