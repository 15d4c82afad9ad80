/**
 * A bench run's own PostgreSQL (bench/run.ts, `storage: 'postgres'`): a throwaway cluster
 * (tools/pg-cluster.ts, fsync on, as the file backend's default flush) and one database, the
 * cluster's CPU from /proc, and the bets stored, counted in the database.
 */
import pg from 'pg';
import { PgCluster } from '../tools/pg-cluster.js';
import { databaseCpu } from './procs.js';

/** A run's own PostgreSQL: a throwaway cluster and one database. */
export class Database {
  private constructor(
    readonly cluster: PgCluster,
    readonly url: string,
  ) {}

  static async start(): Promise<Database> {
    const cluster = await PgCluster.start({ fast: false });
    try {
      return new Database(cluster, await cluster.createDatabase('bench'));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  cpu(): Map<number, number> {
    return databaseCpu(this.cluster.dir);
  }

  async bets(): Promise<number> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM loteria.bets')).rows[0]?.n ?? 0);
    } catch {
      return 0;
    } finally {
      await client.end();
    }
  }

  stop(): Promise<void> {
    return this.cluster.stop();
  }
}
