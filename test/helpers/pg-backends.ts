/**
 * What the PostgreSQL backend tests share: bets and encoded batches built from an index (so
 * a test can compute what should be stored without the backend), backends and admin clients
 * that afterEach closes, a log probe, and a wait on a database condition.
 */
import { afterEach } from 'vitest';
import pg from 'pg';
import { WINNING_NUMBER, type Bet } from '../../shared/domain/bet.js';
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { BatchBuilder } from '../../shared/protocol/bet-codec.js';
import { HEADER_SIZE } from '../../shared/protocol/messages.js';
import type { BatchIn } from '../../server/storage/backend.js';
import { PostgresBackend, type PostgresBackendOptions } from '../../server/storage/postgres/postgres-backend.js';

/** Bet i of an agency's stream: every 9th wins; names with a comma, quotes, a backslash and accents now and then. */
export function betAt(agency: number, i: number): Bet {
  return {
    agency,
    firstName: i % 4 === 0 ? 'María José' : `Nombre${i % 7}`,
    lastName: i % 5 === 0 ? 'Pérez, "el" \\ Gómez' : 'Gomez',
    document: String(i % 11 === 0 ? `00${i}` : 20_000_000 + i),
    birthdate: i % 3 === 0 ? '2000-02-29' : i % 3 === 1 ? '0099-01-01' : '1985-12-31',
    number: i % 9 === 0 ? WINNING_NUMBER : (i * 7) % 7000,
  };
}

/** Encodes bets the way a client's BATCH carries them (the payload after first and count). */
export function encodeBets(bets: readonly Bet[]): Buffer {
  const builder = new BatchBuilder(bets.length);
  for (const bet of bets) if (!builder.add(bet)) throw new Error('test batch too large for one frame: use fewer bets');
  return Buffer.from(builder.take(0).subarray(HEADER_SIZE + 6));
}

/** The batch of bets first..first+count-1 of `agency`'s stream. */
export function batchAt(agency: number, first: number, count: number): BatchIn {
  const bets = Array.from({ length: count }, (_, k) => betAt(agency, first + k));
  return { first, count, bets: encodeBets(bets) };
}

const backends = new Set<PostgresBackend>();
const clients = new Set<pg.Client>();

afterEach(async () => {
  await Promise.all([...backends].map((b) => b.close()));
  await Promise.all([...clients].map((c) => c.end().catch(() => undefined)));
  backends.clear();
  clients.clear();
});

export async function openBackend(options: PostgresBackendOptions): Promise<PostgresBackend> {
  const backend = await PostgresBackend.open(options);
  backends.add(backend);
  return backend;
}

/** A plain connection for checks and for holding locks; a dropped connection is expected in restart tests. */
export async function adminClient(url: string, schema = 'loteria'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  client.on('error', () => undefined);
  clients.add(client);
  await client.connect();
  return client;
}

export async function scalar(client: pg.Client, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await client.query<{ v: string | number }>(sql, params);
  return Number(rows[0]?.v);
}

/** Re-checks `condition` every 20 ms until it holds; fails after `ms` naming `what`. */
export async function until(what: string, condition: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until a connection of `applicationName` is blocked on a lock. */
export function untilWaitingOnLock(admin: pg.Client, applicationName: string): Promise<void> {
  return until(`${applicationName} waits on a lock`, async () => {
    const n = await scalar(admin, "SELECT count(*) AS v FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [
      applicationName,
    ]);
    return n > 0;
  });
}

export interface LogProbe {
  readonly log: Logger;
  readonly lines: Array<Record<string, unknown>>;
  waitFor(action: string, result: string): Promise<void>;
}

/** A JSON logger whose lines a test can wait for. */
export function logProbe(): LogProbe {
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<{ action: string; result: string; resolve: () => void }>();
  const log = createLogger({
    level: 'info',
    format: 'json',
    destination: {
      write(line: string) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        for (const w of waiters) {
          if (entry.action === w.action && entry.result === w.result) {
            waiters.delete(w);
            w.resolve();
          }
        }
      },
    },
  });
  return {
    log,
    lines,
    waitFor: (action, result) =>
      lines.some((l) => l.action === action && l.result === result)
        ? Promise.resolve()
        : new Promise((resolve) => waiters.add({ action, result, resolve })),
  };
}
