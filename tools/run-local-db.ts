/**
 * The storage side of `make run` (tools/run-local.ts): what each server is told about its
 * storage, and the bets file the table and the inspector read at the end.
 *   file      one server, its bets file under --out (SERVER_STORAGE_PATH), as always;
 *   postgres  a throwaway cluster (tools/pg-cluster.ts: initdb in a temp directory, as the
 *             `postgres` user when we are root, on a free loopback port), one database that
 *             every server shares (SERVER_STORAGE=postgres, SERVER_DATABASE_URL, SERVER_ID),
 *             exported to the course's bets file at the end (export-bets), then removed.
 */
import { exportBets } from '../server/storage/postgres/export.js';
import { PgCluster } from './pg-cluster.js';

export const Storage = { FILE: 'file', POSTGRES: 'postgres' } as const;
export type Storage = (typeof Storage)[keyof typeof Storage];

export class RunUsageError extends Error {}

/** `--storage` and `--servers`, checked: several servers need the shared database. */
export function parseStorage(storage: string, servers: string): { storage: Storage; servers: number } {
  if (storage !== Storage.FILE && storage !== Storage.POSTGRES)
    throw new RunUsageError(`--storage ${JSON.stringify(storage)}: give file or postgres (make run STORAGE=postgres)`);
  const n = Number(servers);
  if (!/^\d+$/.test(servers) || n < 1 || n > 16)
    throw new RunUsageError(`--servers ${JSON.stringify(servers)}: give a whole number from 1 to 16 (make run SERVERS=2)`);
  if (storage === Storage.FILE && n > 1)
    throw new RunUsageError(
      `--servers ${n}: the file backend takes one server; several share a database: make run STORAGE=postgres SERVERS=${n}`,
    );
  return { storage, servers: n };
}

export interface RunStorage {
  readonly kind: Storage;
  /** SERVER_* settings of server `index` (0-based) named `name`. */
  env(index: number, name: string): Record<string, string>;
  /** Writes `path` (the course's bets file) when the servers have stopped: the file backend wrote it already. */
  collect(path: string): Promise<void>;
  /** Stops and removes the cluster, if any; idempotent. */
  close(): Promise<void>;
}

export function fileStorage(path: string): RunStorage {
  return {
    kind: Storage.FILE,
    env: () => ({ SERVER_STORAGE_PATH: path }),
    collect: async () => {},
    close: async () => {},
  };
}

/** Starts the cluster and makes the database; says where, since a Ctrl-C must leave nothing behind. */
export async function postgresStorage(say: (line: string) => void): Promise<RunStorage> {
  const cluster = await PgCluster.start();
  try {
    const url = await cluster.createDatabase('loteria');
    say(`run-local: PostgreSQL on 127.0.0.1:${cluster.port}, a throwaway cluster in ${cluster.dir} (removed at the end)`);
    return {
      kind: Storage.POSTGRES,
      env: (_index, name) => ({ SERVER_STORAGE: Storage.POSTGRES, SERVER_DATABASE_URL: url, SERVER_ID: name }),
      collect: async (path) => {
        const { rows } = await exportBets({ url, out: path });
        say(`run-local: exported ${rows} bets from PostgreSQL to ${path} (npm run export-bets)`);
      },
      close: () => cluster.stop(),
    };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
