/**
 * The one place that knows both backends: SERVER_STORAGE picks the bets file (FileBackend,
 * recovered from its journal) or PostgreSQL (PostgresBackend, migrated at open). Everything
 * else in the server holds a StorageBackend.
 */
import { LogFormat, type Logger } from '../../shared/logging/logger.js';
import { StorageKind, type ServerConfig } from '../config.js';
import type { StorageBackend } from './backend.js';
import { FileBackend } from './file-backend.js';

export interface StorageHooks {
  /** Hears how long each group commit's flushes took (file backend, SERVER_FSYNC on). */
  readonly onFsync?: (seconds: number) => void;
  /**
   * Aborted when the server is told to stop while it starts. PostgreSQL stops waiting for an
   * unreachable database (StartStoppedError); the file backend's open is bounded and ends first.
   */
  readonly stop?: AbortSignal;
}

/**
 * Opens the configured backend. File: RecoveryError when the files cannot be trusted.
 * PostgreSQL: StorageConfigError when the database holds another lottery,
 * StorageUnavailableError when it stays unreachable, StartStoppedError when `hooks.stop` aborts
 * the wait.
 */
export async function openStorage(config: ServerConfig, log: Logger, hooks: StorageHooks = {}): Promise<StorageBackend> {
  if (config.storage === StorageKind.POSTGRES) {
    if (config.database === null) throw new Error('SERVER_STORAGE is postgres but no SERVER_DATABASE_URL was read');
    // Loaded only here: pg (and the fetch implementation its start-up probes) would otherwise
    // load in every file-backed server before it listens.
    const { PostgresBackend } = await import('./postgres/postgres-backend.js');
    return PostgresBackend.open({
      url: config.database.connectionString,
      agencies: config.agencies,
      serverId: config.serverId,
      log,
      stop: hooks.stop,
    });
  }
  return FileBackend.open({
    path: config.storagePath,
    agencies: config.agencies,
    fsync: config.fsync,
    workers: config.workers,
    log,
    logLevel: config.logLevel,
    logFormat: process.env.LOG_FORMAT ?? LogFormat.TEXT,
    serverId: config.serverId,
    ...(hooks.onFsync ? { onFsync: hooks.onFsync } : {}),
  });
}
