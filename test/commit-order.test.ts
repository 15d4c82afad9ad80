/**
 * Writes whose flush overlaps the next write (ProtectedStorage.storeRows, sync/commit-order.ts):
 * each flush on a description of its own; records in file order whatever order the flushes
 * finish in; a failed flush cuts back and fails every write not yet committed, and only those; a
 * FINISHED asked after a run lands after its records; the draw reads committed rows only;
 * BetPool runs the draw alone; recovery finds nothing to cut. Real files; the flush is held
 * back or failed on demand, and real fdatasync on two pool workers.
 */
import { closeSync, fstatSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverDurableState } from '../server/storage/durable-state.js';
import { RecordKind, scanJournal } from '../server/storage/journal.js';
import { ProtectedStorage, RowsCutBackError, type ConsumedBatch } from '../server/storage/protected-storage.js';
import type { StorageHandle } from '../server/storage/storage-handle.js';
import { CommitOrderBrokenError } from '../server/sync/commit-order.js';
import { deferred, type Deferred } from '../shared/util/async.js';
import { collectingLogger, numberedBatches, numberedBet, numberedRow, openDurable } from './helpers/durable.js';
import { WINNING_NUMBER } from '../shared/domain/bet.js';
import { makeTempDir, removeDir } from './helpers/processes.js';

let dir: string;
let files = 0;
/** The descriptors the last heldStorage was asked to flush, in order. */
let fds: number[] = [];
const handles: StorageHandle[] = [];

beforeAll(async () => {
  dir = await makeTempDir('commit-order');
});
afterAll(async () => {
  for (const h of handles) ProtectedStorage.close(h);
  await removeDir(dir);
});

/** A journaled storage on this thread whose flushes wait until the test settles them, in call order. */
function heldStorage(agencies = 2): {
  storage: ProtectedStorage;
  path: string;
  flushes: Deferred<void>[];
  flushed: (n: number) => Promise<void>;
  handle: StorageHandle;
} {
  const path = join(dir, `bets-${++files}.csv`);
  recoverDurableState(path, agencies, collectingLogger().log);
  const handle = ProtectedStorage.open(path, { fsync: true, next: Array.from({ length: agencies }, () => 0) });
  handles.push(handle);
  const flushes: Deferred<void>[] = [];
  fds = [];
  const storage = new ProtectedStorage(handle, false, (fd) => {
    const d = deferred();
    flushes.push(d);
    fds.push(fd);
    return d.promise;
  });
  /** Resolves once `n` flushes in all have been asked for. */
  const flushed = async (n: number): Promise<void> => {
    while (flushes.length < n) await new Promise((r) => setImmediate(r));
  };
  return { storage, path, flushes, flushed, handle };
}

/** Rows and records of bets [from, to) of agency `a`, as one batch. */
function write(a: number, from: number, to: number): [Buffer, ConsumedBatch[]] {
  let rows = '';
  for (let i = from; i < to; i++) rows += numberedRow(a, i);
  const bytes = Buffer.byteLength(rows);
  return [Buffer.from(rows), [{ agency: a, first: from, count: to - from, stored: to - from, bytes }]];
}

function journal(path: string): string[] {
  return scanJournal(readFileSync(`${path}.journal`))
    .records.filter((r) => r.kind !== RecordKind.HEADER)
    .map((r) =>
      r.kind === RecordKind.BATCH
        ? `batch ${r.agency}:${r.first} end ${r.end}`
        : r.kind === RecordKind.FINISHED
          ? `finished ${r.agency}`
          : `kind ${r.kind}`,
    );
}

/** Whether the promise has settled by the next turns of the event loop. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  return done;
}

describe('writes committed in file order while their flushes overlap', () => {
  it('records a write only after the one before it, whatever order their flushes finish in', async () => {
    const { storage, path, flushes, flushed } = heldStorage();
    const [ra, ba] = write(1, 0, 3);
    const [rb, bb] = write(2, 0, 2);
    const a = storage.storeRows(ra, ba);
    const b = storage.storeRows(rb, bb);
    await flushed(2);
    // Both writes are in the file and both flushes under way: the second waited for nothing.
    expect(readFileSync(path, 'utf8')).toBe(ra.toString() + rb.toString());
    flushes[1]!.resolve();
    expect(await settled(b)).toBe(false);
    expect(journal(path)).toEqual([]);
    flushes[0]!.resolve();
    await Promise.all([a, b]);
    expect(journal(path)).toEqual([`batch 1:0 end ${ra.length}`, `batch 2:0 end ${ra.length + rb.length}`]);
  });

  it('cuts back and fails every write not yet committed when a flush fails, its own flush ok or not; a write after the cut commits', async () => {
    const { storage, path, flushes, flushed } = heldStorage();
    const [r0, b0] = write(1, 0, 2);
    const committed = storage.storeRows(r0, b0);
    await flushed(1);
    flushes[0]!.resolve();
    await committed;
    const [ra, ba] = write(1, 2, 5);
    const [rb, bb] = write(2, 0, 4);
    const a = storage.storeRows(ra, ba);
    const b = storage.storeRows(rb, bb);
    await flushed(3);
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    flushes[1]!.reject(eio);
    const failed = await a.then(
      () => null,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(RowsCutBackError);
    expect((failed as Error).message).toMatch(/fdatasync of .*bets-\d+\.csv failed \(EIO: i\/o error.*no batch of this write was stored/);
    expect((failed as Error).cause).toBe(eio);
    // The cut took the rows of both uncommitted writes and kept the committed ones.
    expect(readFileSync(path, 'utf8')).toBe(r0.toString());
    // The second write's own flush succeeds, but its rows are gone.
    flushes[2]!.resolve();
    await expect(b).rejects.toThrow(/an earlier write failed to reach the disk/);
    const [rc, bc] = write(2, 0, 1);
    const c = storage.storeRows(rc, bc);
    await flushed(4);
    flushes[3]!.resolve();
    await c;
    expect(readFileSync(path, 'utf8')).toBe(r0.toString() + rc.toString());
    expect(journal(path)).toEqual([`batch 1:0 end ${r0.length}`, `batch 2:0 end ${r0.length + rc.length}`]);
    // What a restart would make of the files: nothing to cut, agency 1 at 2, agency 2 at 1.
    const recovered = recoverDurableState(path, 2, collectingLogger().log);
    expect(recovered.cut).toEqual({ bets: 0, journal: 0 });
    expect(recovered.agencies.map((x) => x.next)).toEqual([2, 1]);
  });

  it('flushes each write through a description of the bets file of its own, read-only, closed after', async () => {
    const { storage, path, flushes, flushed, handle } = heldStorage();
    const [ra, ba] = write(1, 0, 1);
    const [rb, bb] = write(1, 1, 2);
    const a = storage.storeRows(ra, ba);
    const b = storage.storeRows(rb, bb);
    await flushed(2);
    const seen = [...fds];
    /** The file's open flags (/proc/self/fdinfo): a dup of the shared fd would show its O_WRONLY | O_APPEND. */
    const flags = (fd: number): number =>
      Number.parseInt(/^flags:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    expect(flags(handle.fd) & 0o3).toBe(0o1);
    for (const fd of seen) {
      expect(realpathSync(`/proc/self/fd/${fd}`)).toBe(realpathSync(path));
      expect(flags(fd) & 0o3).toBe(0o0);
    }
    expect(new Set(seen).size).toBe(2);
    flushes[0]!.resolve();
    flushes[1]!.resolve();
    await Promise.all([a, b]);
    for (const fd of seen) expect(() => fstatSync(fd)).toThrow(/EBADF/);
  });

  it('refuses every later write when even the cut-back fails, saying to restart', async () => {
    const { storage, path, flushes, flushed, handle } = heldStorage();
    const [ra, ba] = write(1, 0, 2);
    const a = storage.storeRows(ra, ba);
    await flushed(1);
    // The bets file's fd, reopened read-only: the rows are written, the cut-back's ftruncate will fail.
    closeSync(handle.fd);
    handle.fd = openSync(path, 'r');
    flushes[0]!.reject(new Error('EIO: i/o error, fdatasync'));
    await expect(a).rejects.toThrow(CommitOrderBrokenError);
    await expect(a).rejects.toThrow(/cutting .*bets-\d+\.csv back to 0 bytes failed.*restart the server, and recovery cuts them/);
    const [rb, bb] = write(2, 0, 1);
    await expect(storage.storeRows(rb, bb)).rejects.toThrow(CommitOrderBrokenError);
    expect(readFileSync(path, 'utf8')).toBe(ra.toString());
    expect(journal(path)).toEqual([]);
    // What a restart makes of it: the unacknowledged rows cut.
    expect(recoverDurableState(path, 2, collectingLogger().log).cut.bets).toBe(ra.length);
  });

  it('records a FINISHED asked after a run once the run is recorded, not before', async () => {
    const { storage, path, flushes, flushed } = heldStorage();
    const [ra, ba] = write(1, 0, 2);
    const run = storage.storeRows(ra, ba);
    await flushed(1);
    const finished = storage.recordFinished(1);
    expect(await settled(finished)).toBe(false);
    flushes[0]!.resolve();
    await Promise.all([run, finished]);
    expect(journal(path)).toEqual([`batch 1:0 end ${ra.length}`, 'finished 1']);
  });

  it('draws from committed rows only: a write whose flush is under way is not yet a bet', async () => {
    const { storage, flushes, flushed } = heldStorage();
    // Bet 7 of each agency plays the winning number.
    const [ra, ba] = write(1, 0, 8);
    const first = storage.storeRows(ra, ba);
    await flushed(1);
    flushes[0]!.resolve();
    await first;
    const [rb, bb] = write(2, 0, 8);
    const pending = storage.storeRows(rb, bb);
    await flushed(2);
    expect(await storage.scanWinners()).toEqual({ winners: [[1, ['10000007']]], scanned: 8 });
    flushes[1]!.resolve();
    await pending;
    expect(await storage.scanWinners()).toEqual({
      winners: [
        [1, ['10000007']],
        [2, ['20000007']],
      ],
      scanned: 16,
    });
  });
});

describe('BetPool runs the draw alone', () => {
  it('a run asked for while the draw reads waits for it, then lands (a write on the worker of the draw would block on its lock)', async () => {
    const path = join(dir, `bets-${++files}.csv`);
    const o = openDurable(path, 2, { fsync: true, workers: 1 });
    try {
      // ~2.4 MB, so that the draw's scan takes several reads: the run asked for meanwhile reaches the worker mid-scan.
      const sizes = Array.from({ length: 31 }, () => 150);
      for (let r = 0; r < 13; r++) {
        const stored = await o.pool.storeBatches(1, numberedBatches(1, r * 31 * 150, sizes));
        expect(stored.every((x) => x.ok)).toBe(true);
      }
      o.counter.markFinished(1);
      o.counter.markFinished(2);
      const draw = o.pool.draw();
      const late = o.pool.storeBatches(2, numberedBatches(2, 0, [10]));
      const result = await draw;
      expect(result.scanned).toBe(13 * 31 * 150);
      const winning = Array.from({ length: 13 * 31 * 150 }, (_, i) => numberedBet(1, i)).filter((b) => b.number === WINNING_NUMBER);
      expect(result.winners).toEqual([[1, winning.map((b) => b.document)]]);
      expect(await late).toEqual([{ ok: true, stored: 10 }]);
    } finally {
      await o.close();
    }
    expect(readFileSync(path, 'utf8').split('\r\n')).toHaveLength(13 * 31 * 150 + 10 + 1);
  });
});

describe('two pool workers flushing with fdatasync', () => {
  it('store many runs of many agencies at once: every batch once, journal in file order, nothing for recovery to cut', async () => {
    const path = join(dir, `bets-${++files}.csv`);
    const agencies = 8;
    const o = openDurable(path, agencies, { fsync: true, workers: 2 });
    try {
      const runsEach = 12;
      const results = await Promise.all(
        Array.from({ length: agencies }, async (_, k) => {
          const out = [];
          // An agency's runs go one after another, as a session sends them.
          for (let r = 0; r < runsEach; r++) out.push(...(await o.pool.storeBatches(k + 1, numberedBatches(k + 1, r * 30, [10, 10, 10]))));
          return out;
        }),
      );
      expect(results.flat().every((x) => x.ok)).toBe(true);
    } finally {
      await o.close();
    }
    const bets = readFileSync(path, 'utf8');
    expect(bets.split('\r\n').length - 1).toBe(agencies * 12 * 30);
    const ends = scanJournal(readFileSync(`${path}.journal`))
      .records.filter((r) => r.kind === RecordKind.BATCH)
      .map((r) => (r.kind === RecordKind.BATCH ? r.end : -1));
    expect(ends).toHaveLength(agencies * 12 * 3);
    expect(ends.every((e, i) => i === 0 || e > ends[i - 1]!)).toBe(true);
    expect(ends.at(-1)).toBe(Buffer.byteLength(bets));
    const recovered = recoverDurableState(path, agencies, collectingLogger().log);
    expect(recovered.cut).toEqual({ bets: 0, journal: 0 });
    expect(recovered.agencies.map((a) => a.next)).toEqual(Array.from({ length: agencies }, () => 12 * 30));
  });
});
