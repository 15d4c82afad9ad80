/**
 * `pg_ctl restart -m fast` while two servers store: every connection is cut, the pools and
 * the listeners reconnect, and an operation caught in flight either retries (default) or
 * fails cleanly with StorageUnavailableError (retries off), its retry then stored once or
 * recognised as DUPLICATE. An admin transaction holding an agency's row makes sure an
 * operation is in flight when the restart comes.
 */
import { describe, expect, it } from 'vitest';
import { Admission, StorageUnavailableError, type RunIn } from '../server/storage/backend.js';
import type { PostgresBackend } from '../server/storage/postgres/postgres-backend.js';
import { POSTGRES, useCluster } from './helpers/postgres.js';
import { adminClient, batchAt, logProbe, openBackend, scalar, untilWaitingOnLock } from './helpers/pg-backends.js';

const BATCHES = 40;
const SIZE = 50;

/** Streams BATCHES batches of `agency` one after the other, as a session would; returns their statuses. */
async function stream(backend: PostgresBackend, agency: number, progress: (done: number) => void): Promise<string[]> {
  const { epoch } = await backend.claim(agency);
  const seen: string[] = [];
  for (let k = 0; k < BATCHES; k++) {
    const run: RunIn = { agency, epoch, batches: [batchAt(agency, k * SIZE, SIZE)] };
    const outcomes = await backend.storeRuns([run]);
    seen.push(outcomes[0]![0]!.status);
    progress(k + 1);
  }
  return seen;
}

describe.skipIf(!POSTGRES.available)('PostgreSQL backend across a database restart', () => {
  const db = useCluster();

  it('pg_ctl restart -m fast mid-stream: every batch stored once, listeners back, the draw wakes the other server', async () => {
    const url = await db.database();
    const probeA = logProbe();
    const probeB = logProbe();
    const [a, b] = await Promise.all([
      openBackend({ url, agencies: 4, serverId: 'A', log: probeA.log, retryMs: 60_000 }),
      openBackend({ url, agencies: 4, serverId: 'B', log: probeB.log, retryMs: 60_000 }),
    ]);
    const holder = await adminClient(url);
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM agencies WHERE agency = 1 FOR UPDATE');
    let resolveHalfway: () => void = () => {};
    const halfway = new Promise<void>((resolve) => {
      resolveHalfway = resolve;
    });
    const streams = [
      stream(a, 1, () => {}), // its first batch waits on the holder's lock
      stream(a, 2, () => {}),
      stream(b, 3, (done) => done === BATCHES / 2 && resolveHalfway()),
      stream(b, 4, () => {}),
    ];
    const admin = await adminClient(url);
    await untilWaitingOnLock(admin, 'loteria:A');
    await halfway;
    await db.cluster.restart('fast');
    const statuses = await Promise.all(streams);
    // A commit cut off by the restart is retried and found done: DUPLICATE, never twice.
    for (const s of statuses) expect(s.every((x) => x === Admission.STORED || x === Admission.DUPLICATE)).toBe(true);
    const check = await adminClient(url);
    expect(await scalar(check, 'SELECT count(*) AS v FROM bets')).toBe(4 * BATCHES * SIZE);
    expect(await scalar(check, 'SELECT count(*) AS v FROM (SELECT agency, seq FROM bets GROUP BY agency, seq HAVING count(*) > 1) d')).toBe(
      0,
    );
    expect((await check.query('SELECT next::int FROM agencies ORDER BY agency')).rows.map((r) => r.next)).toEqual(
      Array(4).fill(BATCHES * SIZE),
    );
    await Promise.all([probeA.waitFor('db_listener', 'reconnected'), probeB.waitFor('db_listener', 'reconnected')]);

    const held = b.waitForDraw();
    for (const [backend, agency] of [
      [a, 1],
      [a, 2],
      [b, 3],
      [b, 4],
    ] as const) {
      const { epoch } = await backend.claim(agency);
      await backend.markFinished(agency, epoch);
    }
    const drawn = await a.draw();
    await held;
    // Bet i wins when i % 9 == 0: 223 of 0..1999 per agency.
    expect(drawn).toMatchObject({ bets: 4 * BATCHES * SIZE, winners: 4 * Math.ceil((BATCHES * SIZE) / 9) });
    expect(await b.winners(3)).toHaveLength(Math.ceil((BATCHES * SIZE) / 9));
  }, 180_000);

  it('with retries off, an operation in flight fails cleanly with StorageUnavailableError and its retry stores it once', async () => {
    const url = await db.database();
    const a = await openBackend({ url, agencies: 1, serverId: 'A', retryMs: 0 });
    const { epoch } = await a.claim(1);
    const holder = await adminClient(url);
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM agencies WHERE agency = 1 FOR UPDATE');
    const run: RunIn = { agency: 1, epoch, batches: [batchAt(1, 0, SIZE)] };
    // The outcome is caught at once: the rejection comes while the restart is awaited.
    const inFlight = a.storeRuns([run]).then(
      () => null,
      (err: unknown) => err,
    );
    const admin = await adminClient(url);
    await untilWaitingOnLock(admin, 'loteria:A');
    await db.cluster.restart('fast');
    const failure = await inFlight;
    expect(failure).toBeInstanceOf(StorageUnavailableError);
    expect((failure as Error).message).toMatch(/storing batches failed: the database is unreachable .*retry: it is safe/);
    expect((await a.storeRuns([run]))[0]).toEqual([{ status: Admission.STORED, first: 0, count: SIZE }]);
    expect((await a.storeRuns([run]))[0]).toEqual([{ status: Admission.DUPLICATE, first: 0, count: SIZE }]);
    const check = await adminClient(url);
    expect(await scalar(check, 'SELECT count(*) AS v FROM bets')).toBe(SIZE);
  }, 120_000);
});
