/**
 * The schema, as numbered migrations applied at start. Every server runs migrate() when it
 * opens the database; the first one applies what is missing, the others find it applied.
 * Two servers starting together do not race: the whole check-and-apply runs under a
 * session-level advisory lock (released by unlock, or by PostgreSQL when the connection
 * dies), and each migration commits with its row in schema_migrations in one transaction.
 * A migration, once released, is never edited: a change is a new migration.
 */
import type pg from 'pg';
import { WINNING_NUMBER } from '../../../shared/domain/bet.js';
import { StorageConfigError } from '../backend.js';

/** First key of the two-int advisory locks this backend takes ("LOT1"); the second is hashtext(schema). */
export const LOCK_CLASS = 0x4c4f5431;

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/*
 * lottery: one row, the draw's state. 'pending' until the draw's transaction commits 'done'
 *   with the winners; a draw in progress is that transaction's lock on the row (see draw.ts).
 * agencies: one row per agency, created at start: `next` (the admission rule's durable
 *   position) and `epoch` (the newest session's claim). Its row lock serializes everything
 *   done to one agency: admission, FINISHED, claims.
 * batches: one idempotency record per admitted batch, key (agency, first); `stored` is count,
 *   or 0 for a batch refused for a bad bet (consumed). Written in the bets' transaction.
 * bets: the course's six fields, the batch key and the bet's index in the agency's stream.
 *   No index but the winners' partial one: COPY stays an append.
 * finished: one row per agency that sent FINISHED; the primary key makes a repeat a no-op.
 * winners: written once, by the draw's transaction.
 * lottery.draw_token (2): the token of the draw() call that ran the draw.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'lottery, agencies, batches, bets, finished, winners',
    sql: `
      CREATE TABLE lottery (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        agencies integer NOT NULL CHECK (agencies >= 1),
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
        drawn_by text,
        drawn_at timestamptz,
        bets bigint,
        winners integer
      );
      CREATE TABLE agencies (
        agency integer PRIMARY KEY CHECK (agency >= 1),
        next bigint NOT NULL DEFAULT 0 CHECK (next >= 0),
        epoch bigint NOT NULL DEFAULT 0,
        server text,
        claimed_at timestamptz
      );
      CREATE TABLE batches (
        agency integer NOT NULL REFERENCES agencies,
        first bigint NOT NULL CHECK (first >= 0),
        count integer NOT NULL CHECK (count >= 1),
        stored integer NOT NULL CHECK (stored = 0 OR stored = count),
        PRIMARY KEY (agency, first)
      );
      CREATE TABLE bets (
        agency integer NOT NULL,
        batch_first bigint NOT NULL,
        seq bigint NOT NULL,
        first_name text NOT NULL,
        last_name text NOT NULL,
        document text NOT NULL,
        birthdate date NOT NULL,
        number smallint NOT NULL CHECK (number BETWEEN 0 AND 9999)
      );
      CREATE INDEX bets_winning ON bets (agency, seq) WHERE number = ${WINNING_NUMBER};
      CREATE TABLE finished (
        agency integer PRIMARY KEY REFERENCES agencies,
        at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE winners (
        agency integer NOT NULL,
        seq bigint NOT NULL,
        document text NOT NULL,
        PRIMARY KEY (agency, seq)
      );
    `,
  },
  {
    // Which draw() call ran the draw: a call whose COMMIT succeeded but whose answer was lost
    // retries, finds the draw done, and must still know that it ran it (draw.ts).
    version: 2,
    name: 'lottery.draw_token',
    sql: 'ALTER TABLE lottery ADD COLUMN draw_token text;',
  },
];

/** A schema name safe to splice into SQL and channel names. */
export function checkSchemaName(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,39}$/.test(schema)) {
    throw new StorageConfigError(
      `schema name ${JSON.stringify(schema)}: use 1 to 40 lower-case letters, digits and _ (not starting with a digit)`,
    );
  }
  return schema;
}

/**
 * Creates the schema, applies the missing migrations and records the lottery's size, all
 * under the advisory lock. The client's search_path must name `schema` (the pool sets it).
 * Returns the versions applied now.
 */
export async function prepareSchema(client: pg.ClientBase, schema: string, agencies: number): Promise<number[]> {
  await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [LOCK_CLASS, schema]);
  try {
    const applied = await migrate(client, schema);
    await initLottery(client, agencies);
    return applied;
  } finally {
    // A connection that died has released the lock with its session.
    await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, schema]).catch(() => undefined);
  }
}

async function migrate(client: pg.ClientBase, schema: string): Promise<number[]> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${checkSchemaName(schema)}`);
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
  const done = new Set(rows.map((r) => r.version));
  const known = Math.max(...MIGRATIONS.map((m) => m.version));
  const ahead = rows.find((r) => r.version > known);
  if (ahead !== undefined) {
    throw new StorageConfigError(
      `the database has migration ${ahead.version}, newer than this server knows (${known}): upgrade the server`,
    );
  }
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    await client.query('BEGIN');
    try {
      await client.query(m.sql);
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    applied.push(m.version);
  }
  return applied;
}

/**
 * Records the lottery's size on first start and creates the agency rows; a later start with
 * another size is refused (two servers disagreeing on the set would draw at different times).
 */
async function initLottery(client: pg.ClientBase, agencies: number): Promise<void> {
  if (!Number.isInteger(agencies) || agencies < 1) throw new StorageConfigError(`agencies must be a positive integer, got ${agencies}`);
  await client.query('INSERT INTO lottery (agencies) VALUES ($1) ON CONFLICT DO NOTHING', [agencies]);
  const { rows } = await client.query<{ agencies: number }>('SELECT agencies FROM lottery');
  const stored = rows[0]?.agencies;
  if (stored !== agencies) {
    throw new StorageConfigError(
      `the database holds a lottery of ${stored} agencies but this server was started for ${agencies}: start every server with the same number of agencies, or use a fresh database (or schema)`,
    );
  }
  await client.query('INSERT INTO agencies (agency) SELECT generate_series(1, $1::int) ON CONFLICT DO NOTHING', [agencies]);
}
