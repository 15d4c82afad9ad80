/**
 * BetPool's group commit, on a real worker thread and inline. The runs of several sessions
 * asked for in one event-loop turn travel as one task and land in one write (a speed
 * property); what must hold with it, and is checked here: each run keeps its own results, a
 * bad batch costs only itself, rows of a run stay together in the order the runs were asked
 * for, and nothing waiting is lost at close.
 */
import { readFileSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BetPool, SLOT_BYTES, type EncodedBatch } from '../server/pool/bet-pool.js';
import { betToRow } from '../server/storage/bets-file.js';
import { ProtectedNotificationCounter } from '../server/sync/notification-counter.js';
import { RecordKind, scanJournal } from '../server/storage/journal.js';
import { ProtectedStorage } from '../server/storage/protected-storage.js';
import type { StorageHandle } from '../server/storage/storage-handle.js';
import type { Bet } from '../shared/domain/bet.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage } from '../shared/protocol/codec.js';
import type { BatchDTO } from '../shared/protocol/messages.js';

let dir: string;
const pools: BetPool[] = [];
const handles: StorageHandle[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bet-pool-'));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  for (const h of handles) ProtectedStorage.close(h);
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
function openPool(workers: number): { pool: BetPool; path: string } {
  const storage = ProtectedStorage.open(join(dir, `bets-${++files}.csv`));
  handles.push(storage);
  const counter = ProtectedNotificationCounter.allocate(3);
  const pool = new BetPool({ workers, init: { storage, counter, logLevel: 'info', logFormat: 'json' } });
  pools.push(pool);
  return { pool, path: storage.path };
}

const bet = (agency: number, document: string, over: Partial<Bet> = {}): Bet => ({
  agency,
  firstName: 'Ana',
  lastName: 'Paz, "Ñ"',
  document,
  birthdate: '1990-01-31',
  number: Number(document) % 10_000,
  ...over,
});

/** One BATCH per group of bets, encoded and decoded the way a session sees it. */
function batches(firstSeq: number, groups: Bet[][]): EncodedBatch[] {
  return groups.map((bets, i) => {
    const b = new BatchBuilder(1000);
    for (const x of bets) expect(b.add(x)).toBe(true);
    const [frame] = new FrameDecoder().push(b.take(firstSeq + i));
    return decodeMessage(frame!) as BatchDTO;
  });
}

const rows = (bets: Bet[]): string => bets.map(betToRow).join('');

describe.each([1, 0])('BetPool with %i worker(s)', (workers) => {
  it('stores the runs of one turn together, in the order asked, each with its own results', async () => {
    const { pool, path } = openPool(workers);
    const a = [[bet(1, '11'), bet(1, '12')], [bet(1, '13')]];
    const b = [[bet(2, '21')], [bet(2, '22', { birthdate: '1990-02-30' })], [bet(2, '23')]];
    const c = [[bet(3, '31'), bet(3, '32'), bet(3, '33')]];
    // Inline, the write is on this thread and can be counted: one for the three runs.
    const writes = vi.spyOn(ProtectedStorage.prototype, 'storeRows');
    const [ra, rb, rc] = await Promise.all([
      pool.storeBatches(1, batches(1, a)),
      pool.storeBatches(2, batches(1, b)),
      pool.storeBatches(3, batches(1, c)),
    ]);
    expect(ra).toEqual([
      { ok: true, stored: 2 },
      { ok: true, stored: 1 },
    ]);
    // The bad batch of agency 2 loses only itself; its neighbours and the other runs land.
    expect(rb![0]).toEqual({ ok: true, stored: 1 });
    expect(rb![1]).toMatchObject({ ok: false, index: 0 });
    expect((rb![1] as { reason: string }).reason).toMatch(/birth/);
    expect(rb![2]).toEqual({ ok: true, stored: 1 });
    expect(rc).toEqual([{ ok: true, stored: 3 }]);
    expect(readFileSync(path, 'utf8')).toBe(rows([...a.flat(), b[0]![0]!, b[2]![0]!, ...c.flat()]));
    if (workers === 0) expect(writes).toHaveBeenCalledTimes(1);
    writes.mockRestore();
  });

  it('keeps every run whole, and in order with one worker or inline, when one turn holds more than a slot (several tasks)', async () => {
    const { pool, path } = openPool(workers);
    const before = readFileSync(path, 'utf8');
    // 18 runs of 32 batches of ~40 bets (~1.6 KiB each): more than one slot.
    const runs = Array.from({ length: 18 }, (_, r) =>
      Array.from({ length: 32 }, (_, k) =>
        Array.from({ length: 40 }, (_, i) => bet(1 + (r % 3), String(100_000 + r * 10_000 + k * 100 + i))),
      ),
    );
    const sizes = runs.map((groups) => batches(1, groups).reduce((n, x) => n + x.bets.length, 0));
    expect(sizes.reduce((n, s) => n + s, 0)).toBeGreaterThan(SLOT_BYTES);
    const results = await Promise.all(runs.map((groups, r) => pool.storeBatches(1 + (r % 3), batches(100 + r * 32, groups))));
    expect(results.flat().every((x) => x.ok)).toBe(true);
    const later = [[bet(1, '999')]];
    expect(await pool.storeBatches(1, batches(9999, later))).toEqual([{ ok: true, stored: 1 }]);
    expect(readFileSync(path, 'utf8')).toBe(before + rows([...runs.flat(2), ...later.flat()]));
  });

  it('sends the runs still waiting when it closes, then refuses new ones', async () => {
    const { pool, path } = openPool(workers);
    const before = readFileSync(path, 'utf8');
    let settled = false;
    const waiting = pool.storeBatches(2, batches(500, [[bet(2, '77')]])).finally(() => {
      settled = true;
    });
    await pool.close();
    expect(settled).toBe(true); // close() waited for it
    expect(await waiting).toEqual([{ ok: true, stored: 1 }]);
    await expect(pool.storeBatches(2, batches(501, [[bet(2, '78')]]))).rejects.toThrow(/closed/);
    expect(readFileSync(path, 'utf8')).toBe(before + rows([bet(2, '77')]));
  });
});

describe('BetPool with 1 worker, while the worker has its two store tasks', () => {
  /** A pool over a journaled bets file (its onFsync hears one call per store task), and a hold on the storage's read lock. */
  function journaledPool(): { pool: BetPool; path: string; tasks: () => number; holdStorage: () => Promise<() => Promise<void>> } {
    const storage = ProtectedStorage.open(join(dir, `bets-${++files}.csv`), { fsync: true, next: [0, 0, 0, 0] });
    handles.push(storage);
    let tasks = 0;
    const counter = ProtectedNotificationCounter.allocate(4);
    const pool = new BetPool({
      workers: 1,
      init: { storage, counter, logLevel: 'info', logFormat: 'json' },
      onFsync: () => {
        tasks++;
      },
    });
    pools.push(pool);
    // A reader holds the lock the worker's write waits for: the task in flight stays there until released.
    const holdStorage = async (): Promise<() => Promise<void>> => {
      const reading = new ProtectedStorage(storage, false).loadBetChunks();
      await reading.next();
      return async () => {
        await reading.return(undefined);
      };
    };
    return { pool, path: storage.path, tasks: () => tasks, holdStorage };
  }

  it('gathers the runs of later turns into the next task, in the order asked, each with its own results', async () => {
    const { pool, path, tasks, holdStorage } = journaledPool();
    expect(await pool.storeBatches(1, batches(0, [[bet(1, '10')]]))).toEqual([{ ok: true, stored: 1 }]);
    const release = await holdStorage();
    // The worker's two tasks: the first waits for the lock, the second behind it.
    const first = pool.storeBatches(1, batches(1, [[bet(1, '11')]]));
    await nextTurn();
    await nextTurn();
    const second = pool.storeBatches(2, batches(0, [[bet(2, '21')]]));
    await nextTurn();
    await nextTurn();
    const later = [];
    for (const [agency, doc, first] of [
      [3, '31', 0],
      [2, '22', 1],
      [4, '41', 0],
    ] as const) {
      later.push(pool.storeBatches(agency, batches(first, [[bet(agency, doc)]])));
      await nextTurn();
    }
    await release();
    expect(await Promise.all([first, second, ...later])).toEqual(Array.from({ length: 5 }, () => [{ ok: true, stored: 1 }]));
    // The initial store, the first run, the second, then the three later runs as one task.
    expect(tasks()).toBe(4);
    expect(readFileSync(path, 'utf8')).toBe(rows([bet(1, '10'), bet(1, '11'), bet(2, '21'), bet(3, '31'), bet(2, '22'), bet(4, '41')]));
    // Journal order is file order.
    const ends = scanJournal(readFileSync(`${path}.journal`))
      .records.filter((r) => r.kind === RecordKind.BATCH)
      .map((r) => (r.kind === RecordKind.BATCH ? r.end : 0));
    expect(ends).toEqual([...ends].sort((x, y) => x - y));
    expect(ends.at(-1)).toBe(readFileSync(path).length);
  });

  it('sends the runs still waiting before a FINISHED or the draw, so the journal records them first', async () => {
    const { pool, path, holdStorage } = journaledPool();
    await pool.storeBatches(2, batches(0, [[bet(2, '20')]]));
    const release = await holdStorage();
    const busy = pool.storeBatches(1, batches(0, [[bet(1, '10')]]));
    await nextTurn();
    await nextTurn();
    const waiting = pool.storeBatches(1, batches(1, [[bet(1, '11')]]));
    const finished = pool.recordFinished(1);
    await release();
    await Promise.all([busy, waiting, finished]);
    const kinds = scanJournal(readFileSync(`${path}.journal`))
      .records.filter((r) => r.kind !== RecordKind.HEADER)
      .map((r) =>
        r.kind === RecordKind.BATCH ? `batch ${r.agency}:${r.first}` : r.kind === RecordKind.FINISHED ? `finished ${r.agency}` : r.kind,
      );
    expect(kinds).toEqual(['batch 2:0', 'batch 1:0', 'batch 1:1', 'finished 1']);
  });
});
