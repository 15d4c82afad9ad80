/**
 * A throwaway PostgreSQL cluster per test file (tools/pg-cluster.ts): started in beforeAll,
 * stopped and its directory removed in afterAll, also when a test failed. When the server
 * binaries are missing and cannot be installed, `POSTGRES.available` is false and
 * `POSTGRES.reason` says why: the caller skips with that message (describe.skipIf).
 */
import { afterAll, beforeAll } from 'vitest';
import { ensurePostgresBin, PgCluster } from '../../tools/pg-cluster.js';

function probe(): { available: boolean; reason: string } {
  try {
    return { available: true, reason: `PostgreSQL binaries in ${ensurePostgresBin()}` };
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
}

export const POSTGRES = probe();
if (!POSTGRES.available) console.warn(`PostgreSQL tests skipped: ${POSTGRES.reason}`);

export interface ClusterHandle {
  /** The running cluster (throws before beforeAll ran). */
  readonly cluster: PgCluster;
  /** A fresh, empty database of the cluster; its URL. */
  database(): Promise<string>;
}

/** Registers beforeAll/afterAll for one cluster shared by the tests of the enclosing describe. */
export function useCluster(): ClusterHandle {
  let cluster: PgCluster | null = null;
  let databases = 0;
  beforeAll(async () => {
    cluster = await PgCluster.start();
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);
  const handle: ClusterHandle = {
    get cluster(): PgCluster {
      if (cluster === null) throw new Error('the PostgreSQL cluster is not started: use it inside a test or a hook');
      return cluster;
    },
    database: () => handle.cluster.createDatabase(`loteria_${++databases}`),
  };
  return handle;
}
