/**
 * The PostgreSQL backend against a real PostgreSQL (a throwaway cluster): migrations,
 * the admission rule, group commit, takeovers across servers, FINISHED, the exactly-once
 * draw and its wake-ups. Two "servers" are two backends with their own pools and listeners.
 */
import { describe, expect, it } from 'vitest';
import { WINNING_NUMBER } from '../shared/domain/bet.js';
import { Admission, StorageConfigError, type BatchOutcome } from '../server/storage/backend.js';
import { drawOnce } from '../server/storage/postgres/draw.js';
import { POSTGRES, useCluster } from './helpers/postgres.js';
import { adminClient, batchAt, betAt, encodeBets, openBackend, scalar, untilWaitingOnLock } from './helpers/pg-backends.js';

const statuses = (outcomes: BatchOutcome[][]): string[] => outcomes.flat().map((o) => o.status);

describe.skipIf(!POSTGRES.available)('PostgreSQL backend', () => {
  const db = useCluster();

  it('two servers starting together apply the migrations once; a server for another number of agencies is refused', async () => {
    const url = await db.database();
    await Promise.all([openBackend({ url, agencies: 3 }), openBackend({ url, agencies: 3 }), openBackend({ url, agencies: 3 })]);
    const admin = await adminClient(url);
    expect(await scalar(admin, 'SELECT count(*) AS v FROM schema_migrations')).toBe(2);
    expect(await scalar(admin, 'SELECT count(*) AS v FROM agencies')).toBe(3);
    await expect(openBackend({ url, agencies: 4 })).rejects.toThrow(StorageConfigError);
    await expect(openBackend({ url, agencies: 4 })).rejects.toThrow(/lottery of 3 agencies .* started for 4/);
  });

  it('admission: STORED, DUPLICATE, OUT_OF_ORDER on a gap and an overlap, a bad bet consumed, count 0 refused unrecorded', async () => {
    const url = await db.database();
    const a = await openBackend({ url, agencies: 2 });
    const { epoch, next } = await a.claim(1);
    expect(next).toBe(0);
    const bad = { first: 15, count: 3, bets: encodeBets([betAt(1, 15), { ...betAt(1, 16), birthdate: '2001-02-29' }, betAt(1, 17)]) };
    const out = await a.storeRuns([
      {
        agency: 1,
        epoch,
        batches: [
          batchAt(1, 0, 10),
          batchAt(1, 10, 5),
          batchAt(1, 0, 10), // retry: duplicate
          batchAt(1, 20, 5), // gap
          batchAt(1, 12, 5), // overlap
          bad, // first == next, bet 1 is bad: consumed
          { first: 18, count: 0, bets: Buffer.alloc(0) },
          batchAt(1, 18, 2),
        ],
      },
    ]);
    expect(out[0]).toEqual([
      { status: Admission.STORED, first: 0, count: 10 },
      { status: Admission.STORED, first: 10, count: 5 },
      { status: Admission.DUPLICATE, first: 0, count: 10 },
      { status: Admission.OUT_OF_ORDER, first: 20, next: 15 },
      { status: Admission.OUT_OF_ORDER, first: 12, next: 15 },
      { status: Admission.REJECTED, first: 15, index: 1, reason: expect.stringMatching(/birth date "2001-02-29"/), consumed: true },
      { status: Admission.REJECTED, first: 18, index: 0, reason: expect.stringMatching(/count 0/), consumed: false },
      { status: Admission.STORED, first: 18, count: 2 },
    ]);
    expect(statuses(await a.storeRuns([{ agency: 1, epoch, batches: [batchAt(1, 15, 3)] }]))).toEqual([Admission.DUPLICATE]);
    const admin = await adminClient(url);
    expect(await scalar(admin, 'SELECT count(*) AS v FROM bets WHERE agency = 1')).toBe(17);
    expect(await scalar(admin, 'SELECT next AS v FROM agencies WHERE agency = 1')).toBe(20);
    expect(
      (await admin.query('SELECT first, count, stored FROM batches ORDER BY first')).rows.map((r) => [r.first, r.count, r.stored]),
    ).toEqual([
      ['0', 10, 10],
      ['10', 5, 5],
      ['15', 3, 0],
      ['18', 2, 2],
    ]);
    // Every stored bet is the stream's bet at its index, once.
    const seqs = (await admin.query<{ seq: string }>('SELECT seq FROM bets ORDER BY seq')).rows.map((r) => Number(r.seq));
    expect(seqs).toEqual([...Array.from({ length: 15 }, (_, i) => i), 18, 19]);
    // The primary key is the last line: the same key cannot be recorded twice, whoever tries.
    await expect(admin.query('INSERT INTO batches (agency, first, count, stored) VALUES (1, 0, 10, 10)')).rejects.toMatchObject({
      code: '23505',
    });
  });

  it('after FINISHED a new batch (a gap too) is REJECTED without consuming it, and a retry of a stored one is still DUPLICATE', async () => {
    const url = await db.database();
    const a = await openBackend({ url, agencies: 2 });
    const { epoch } = await a.claim(2);
    await a.storeRuns([{ agency: 2, epoch, batches: [batchAt(2, 0, 4)] }]);
    expect(await a.markFinished(2, epoch)).toMatchObject({ counted: true, finished: 1, expected: 2, completed: false });
    const out = await a.storeRuns([{ agency: 2, epoch, batches: [batchAt(2, 4, 4), batchAt(2, 0, 4)] }]);
    expect(out[0]![0]).toEqual({
      status: Admission.REJECTED,
      first: 4,
      index: 0,
      reason: 'agency 2 finished this draw; start a new draw with a fresh bets volume',
      consumed: false,
    });
    expect(out[0]![1]!.status).toBe(Admission.DUPLICATE);
    // A gap after FINISHED is refused for the FINISHED, as the file backend answers it (docs/protocol.md's order).
    const gap = await a.storeRuns([{ agency: 2, epoch, batches: [batchAt(2, 9, 2)] }]);
    expect(gap[0]![0]).toMatchObject({ status: Admission.REJECTED, first: 9, index: 0, consumed: false });
    expect(await a.claim(2)).toMatchObject({ next: 4, finished: true });
  });

  it('a group commit of several agencies is one transaction, visible to another connection once storeRuns resolves', async () => {
    const url = await db.database();
    const a = await openBackend({ url, agencies: 3 });
    const runs = await Promise.all([1, 2, 3].map(async (agency) => ({ agency, epoch: (await a.claim(agency)).epoch })));
    const out = await a.storeRuns(
      runs.map(({ agency, epoch }) => ({ agency, epoch, batches: [batchAt(agency, 0, 20), batchAt(agency, 20, 20)] })),
    );
    expect(statuses(out)).toEqual(Array(6).fill(Admission.STORED));
    const admin = await adminClient(url);
    expect(await scalar(admin, 'SELECT count(*) AS v FROM bets')).toBe(120);
    expect(await scalar(admin, 'SELECT count(DISTINCT xmin::text) AS v FROM bets')).toBe(1);
    expect(
      await scalar(admin, 'SELECT count(DISTINCT xmin::text) AS v FROM (SELECT xmin FROM bets UNION ALL SELECT xmin FROM batches) t'),
    ).toBe(1);
  });

  it('concurrent retries of the same batch on two servers store it once (20 rounds, same session and across a takeover)', async () => {
    const url = await db.database();
    const [a, b] = await Promise.all([
      openBackend({ url, agencies: 40, serverId: 'A' }),
      openBackend({ url, agencies: 40, serverId: 'B' }),
    ]);
    const admin = await adminClient(url);
    for (let round = 0; round < 20; round++) {
      const same = round + 1;
      const { epoch } = await a.claim(same);
      const [x, y] = await Promise.all([
        a.storeRuns([{ agency: same, epoch, batches: [batchAt(same, 0, 30)] }]),
        b.storeRuns([{ agency: same, epoch, batches: [batchAt(same, 0, 30)] }]),
      ]);
      expect([...statuses(x), ...statuses(y)].sort()).toEqual([Admission.DUPLICATE, Admission.STORED]);

      // The client gave up on A and reconnected to B, which claims the agency while A's batch is in flight.
      const moved = round + 21;
      const old = await a.claim(moved);
      const onA = a.storeRuns([{ agency: moved, epoch: old.epoch, batches: [batchAt(moved, 0, 30)] }]);
      const onB = b.claim(moved).then((c) => b.storeRuns([{ agency: moved, epoch: c.epoch, batches: [batchAt(moved, 0, 30)] }]));
      const pair = [...statuses(await onA), ...statuses(await onB)];
      expect([
        [Admission.STORED, Admission.DUPLICATE],
        [Admission.REPLACED, Admission.STORED],
      ]).toContainEqual(pair);
    }
    expect((await admin.query('SELECT agency, count(*)::int AS n FROM bets GROUP BY agency HAVING count(*) <> 30')).rows).toEqual([]);
    expect(await scalar(admin, 'SELECT count(*) AS v FROM bets')).toBe(40 * 30);
    expect(await scalar(admin, 'SELECT count(*) AS v FROM batches')).toBe(40);
  });

  it('a takeover on another server: the old server hears it, its batch and FINISHED store nothing; the new one resumes from next', async () => {
    const url = await db.database();
    const [a, b] = await Promise.all([openBackend({ url, agencies: 2, serverId: 'A' }), openBackend({ url, agencies: 2, serverId: 'B' })]);
    const heardOnA: Array<[number, number]> = [];
    const heardOnB: Array<[number, number]> = [];
    const aHeard = new Promise<void>((resolve) =>
      a.onReplaced((ag, ep) => {
        heardOnA.push([ag, ep]);
        resolve();
      }),
    );
    b.onReplaced((ag, ep) => heardOnB.push([ag, ep]));
    const first = await a.claim(1);
    await a.storeRuns([{ agency: 1, epoch: first.epoch, batches: [batchAt(1, 0, 10)] }]);
    const second = await b.claim(1);
    expect(second).toEqual({ agency: 1, epoch: first.epoch + 1, next: 10, finished: false });
    await aHeard;
    expect(heardOnA).toEqual([[1, second.epoch]]);
    expect(statuses(await a.storeRuns([{ agency: 1, epoch: first.epoch, batches: [batchAt(1, 10, 5)] }]))).toEqual([Admission.REPLACED]);
    expect(await a.markFinished(1, first.epoch)).toEqual({ replaced: true });
    expect(statuses(await b.storeRuns([{ agency: 1, epoch: second.epoch, batches: [batchAt(1, 10, 5)] }]))).toEqual([Admission.STORED]);

    // A second session on B takes over the first one on B: said once, though B also hears its own NOTIFY.
    const third = await b.claim(1);
    const bHeardFourth = new Promise<void>((resolve) => b.onReplaced((_, ep) => ep === third.epoch + 1 && resolve()));
    const fourth = await a.claim(1); // its NOTIFY reaches B after the third's
    await bHeardFourth;
    expect(heardOnB).toEqual([
      [1, third.epoch],
      [1, fourth.epoch],
    ]);
    await b.release(1, third.epoch); // stale: changes nothing
    const admin = await adminClient(url);
    expect((await admin.query('SELECT epoch::int, next::int, server FROM agencies WHERE agency = 1')).rows[0]).toEqual({
      epoch: 4,
      next: 15,
      server: 'A',
    });
    expect(await scalar(admin, 'SELECT count(*) AS v FROM finished')).toBe(0);
    await a.release(1, fourth.epoch);
    expect((await admin.query('SELECT server FROM agencies WHERE agency = 1')).rows[0]).toEqual({ server: null });
  });

  it('a repeated FINISHED counts once and exactly the call completing the set says so', async () => {
    const url = await db.database();
    const a = await openBackend({ url, agencies: 3 });
    const e = await Promise.all([1, 2, 3].map(async (ag) => (await a.claim(ag)).epoch));
    expect(await a.markFinished(1, e[0]!)).toEqual({
      replaced: false,
      counted: true,
      finished: 1,
      expected: 3,
      allFinished: false,
      completed: false,
    });
    expect(await a.markFinished(1, e[0]!)).toEqual({
      replaced: false,
      counted: false,
      finished: 1,
      expected: 3,
      allFinished: false,
      completed: false,
    });
    expect(await a.markFinished(3, e[2]!)).toMatchObject({ counted: true, finished: 2, completed: false });
    expect(await a.markFinished(2, e[1]!)).toMatchObject({ counted: true, finished: 3, allFinished: true, completed: true });
    expect(await a.markFinished(2, e[1]!)).toMatchObject({ counted: false, finished: 3, allFinished: true, completed: false });
    expect(await a.progress()).toEqual({ finished: 3, expected: 3, drawn: false });
  });

  it('the last two agencies finish at the same instant on two servers, 50 times: one completion, one draw, winners once', async () => {
    const url = await db.database();
    const admin = await adminClient(url);
    for (let trial = 0; trial < 50; trial++) {
      const schema = `race_${trial}`;
      const [a, b] = await Promise.all([
        openBackend({ url, schema, agencies: 2, serverId: 'A' }),
        openBackend({ url, schema, agencies: 2, serverId: 'B' }),
      ]);
      const [ca, cb] = await Promise.all([a.claim(1), b.claim(2)]);
      await Promise.all([
        a.storeRuns([{ agency: 1, epoch: ca.epoch, batches: [batchAt(1, 0, 20)] }]),
        b.storeRuns([{ agency: 2, epoch: cb.epoch, batches: [batchAt(2, 0, 10)] }]),
      ]);
      const marks = await Promise.all([a.markFinished(1, ca.epoch), b.markFinished(2, cb.epoch)]);
      expect(marks.filter((m) => !m.replaced && m.completed)).toHaveLength(1);
      expect(marks.filter((m) => !m.replaced && m.allFinished)).toHaveLength(1);
      const draws = await Promise.all([a.draw(), b.draw(), a.draw(), b.draw()]);
      // A server's calls share its one draw: A's two agree, B's two agree, and one server ran it.
      expect([draws[0]!.ranHere, draws[1]!.ranHere].filter(Boolean)).toHaveLength(1);
      expect([draws[2]!.ranHere, draws[3]!.ranHere]).toEqual([draws[0]!.ranHere, draws[1]!.ranHere]);
      expect(await scalar(admin, `SELECT count(*) AS v FROM ${schema}.winners`)).toBe(5);
      // Bets 0, 9, 18 of agency 1 and 0, 9 of agency 2 carry the winning number.
      expect(new Set(draws.map((d) => `${d.bets}/${d.winners}/${d.drawnBy}`)).size).toBe(1);
      expect(draws[0]).toMatchObject({ bets: 30, winners: 5 });
      expect(await b.winners(1)).toEqual([betAt(1, 0), betAt(1, 9), betAt(1, 18)].map((x) => x.document));
      expect(await a.winners(2)).toEqual([betAt(2, 0), betAt(2, 9)].map((x) => x.document));
      await Promise.all([a.close(), b.close()]);
    }
  }, 180_000);

  it('a draw whose COMMIT answer was lost knows on its retry that it ran the draw; any other call does not', async () => {
    const url = await db.database();
    const a = await openBackend({ url, agencies: 1, serverId: 'A' });
    const { epoch } = await a.claim(1);
    await a.storeRuns([{ agency: 1, epoch, batches: [batchAt(1, 0, 10)] }]);
    await a.markFinished(1, epoch);
    // The first attempt of a draw() call commits; its answer never reaches the server.
    const admin = await adminClient(url);
    await admin.query('BEGIN');
    expect(await drawOnce(admin, 'A', 'loteria_draw', 'call-1')).toMatchObject({ ranNow: true, bets: 10, winners: 2 });
    await admin.query('COMMIT');
    // The same call's retry (same token) and another call (another token) find it done.
    await admin.query('BEGIN');
    expect(await drawOnce(admin, 'A', 'loteria_draw', 'call-1')).toEqual({ bets: 10, winners: 2, drawnBy: 'A', ranNow: true });
    expect(await drawOnce(admin, 'A', 'loteria_draw', 'call-2')).toEqual({ bets: 10, winners: 2, drawnBy: 'A', ranNow: false });
    await admin.query('COMMIT');
    expect(await a.draw()).toMatchObject({ ranHere: false, drawnBy: 'A' });
  });

  it('a held WINNERS_QUERY wakes on NOTIFY when another server draws', async () => {
    const url = await db.database();
    const [a, b] = await Promise.all([openBackend({ url, agencies: 2, serverId: 'A' }), openBackend({ url, agencies: 2, serverId: 'B' })]);
    const [ca, cb] = await Promise.all([a.claim(1), b.claim(2)]);
    await b.storeRuns([{ agency: 2, epoch: cb.epoch, batches: [batchAt(2, 0, 10)] }]);
    await b.markFinished(2, cb.epoch);
    const held = b.waitForDraw();
    expect(await b.winners(2)).toBeNull();
    const mark = await a.markFinished(1, ca.epoch);
    expect(mark).toMatchObject({ completed: true });
    await a.draw();
    await held;
    expect(await b.winners(2)).toEqual([betAt(2, 0).document, betAt(2, 9).document]);
    expect(await b.winners(1)).toEqual([]);
    await b.waitForDraw(); // already drawn: at once
  });

  it('a drawing server that dies mid-draw leaves the draw to a server holding a query', async () => {
    const url = await db.database();
    const b = await openBackend({ url, agencies: 1, serverId: 'B' });
    const c = await b.claim(1);
    await b.storeRuns([{ agency: 1, epoch: c.epoch, batches: [batchAt(1, 0, 19)] }]);
    expect(await b.markFinished(1, c.epoch)).toMatchObject({ completed: true });
    // "Server A" drawing: its transaction holds the lottery row.
    const drawer = await adminClient(url);
    await drawer.query('BEGIN');
    await drawer.query('SELECT * FROM lottery FOR UPDATE');
    const held = b.waitForDraw();
    const admin = await adminClient(url);
    await untilWaitingOnLock(admin, 'loteria:B');
    const pid = await scalar(drawer, 'SELECT pg_backend_pid() AS v');
    expect((await admin.query('SELECT pg_terminate_backend($1) AS dead', [pid])).rows[0]).toEqual({ dead: true });
    await held;
    expect((await admin.query('SELECT state, drawn_by, winners FROM lottery')).rows[0]).toEqual({
      state: 'done',
      drawn_by: 'B',
      winners: 3,
    });
    expect(await b.winners(1)).toEqual([0, 9, 18].map((i) => betAt(1, i).document));
    expect(betAt(1, 18).number).toBe(WINNING_NUMBER);
  });
});
