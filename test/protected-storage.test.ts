import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadBets, parseRow } from '../server/storage/bets-file.js';
import { ProtectedStorage } from '../server/storage/protected-storage.js';
import type { StorageHandle } from '../server/storage/storage-handle.js';
import { LockBusyError, RWLock } from '../server/sync/rw-lock.js';
import type { Bet } from '../shared/domain/bet.js';
import { startTsWorker, terminateWorkers, waitWord, type StartedWorker } from './fixtures/run-worker.js';
import { FLAG_WORDS, Flag, batchBets, batchSize, scanProblems, tagOf } from './fixtures/storage-plan.js';

const WORKER = new URL('./fixtures/storage-worker.ts', import.meta.url);
const WRITERS = 8;
const READERS = 2;
const BATCHES = 200;

let dir: string;
let n = 0;
const open: StorageHandle[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'protected-storage-'));
});
afterEach(async () => {
  await terminateWorkers();
  for (const h of open.splice(0)) ProtectedStorage.close(h);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function openStorage(): StorageHandle {
  const h = ProtectedStorage.open(join(dir, `bets-${++n}.csv`));
  open.push(h);
  return h;
}

const start = (workerData: Record<string, unknown>): StartedWorker => startTsWorker(WORKER, workerData);

function set(flags: Int32Array, index: number): void {
  Atomics.store(flags, index, 1);
  Atomics.notify(flags, index);
}

async function loadAll(path: string): Promise<Bet[]> {
  const out: Bet[] = [];
  for await (const bet of loadBets(path)) out.push(bet);
  return out;
}

const sample = (document: string): Bet => ({
  agency: 1,
  firstName: 'Main',
  lastName: 'Thread',
  document,
  birthdate: '2001-09-11',
  number: 1,
});

describe('RWLock on one thread', () => {
  it('lets readers share and keeps writers exclusive', () => {
    const lock = new RWLock(RWLock.allocate());
    expect(lock.tryAcquireRead()).toBe(true);
    expect(lock.tryAcquireRead()).toBe(true);
    expect(lock.tryAcquireWrite()).toBe(false);
    lock.releaseRead();
    expect(lock.tryAcquireWrite()).toBe(false);
    lock.releaseRead();
    expect(lock.tryAcquireWrite()).toBe(true);
    expect(lock.tryAcquireRead()).toBe(false);
    expect(lock.tryAcquireWrite()).toBe(false);
    lock.releaseWrite();
    expect(lock.tryAcquireRead()).toBe(true);
    lock.releaseRead();
  });

  it('refuses new readers while a writer waits, and unbalanced releases throw', () => {
    const sab = RWLock.allocate();
    const lock = new RWLock(sab);
    Atomics.store(new Int32Array(sab), 1, 1); // a writer is waiting
    expect(lock.tryAcquireRead()).toBe(false);
    Atomics.store(new Int32Array(sab), 1, 0);
    expect(() => lock.releaseWrite()).toThrow();
    expect(() => lock.releaseRead()).toThrow();
    expect(lock.tryAcquireWrite()).toBe(true);
  });

  it('withWrite releases the lock even when the critical section throws', () => {
    const lock = new RWLock(RWLock.allocate());
    expect(() =>
      lock.withWrite(() => {
        throw new Error('boom');
      }, false),
    ).toThrow('boom');
    expect(lock.withWrite(() => 7, false)).toBe(7);
  });
});

describe('the batch checker used by the thread tests', () => {
  it('flags a torn batch, a reordered batch and a skipped batch', () => {
    const a = batchBets(1, 0);
    const b = batchBets(1, 1);
    const c = batchBets(2, 0);
    expect(scanProblems([...a, ...c, ...b])).toEqual([]);
    expect(scanProblems([...a.slice(0, -1), ...c])).not.toEqual([]);
    expect(scanProblems([...a.slice(0, 1), ...c, ...a.slice(1)])).not.toEqual([]);
    expect(scanProblems([...b, ...a])).not.toEqual([]);
    expect(scanProblems([...a, ...batchBets(1, 2)])).not.toEqual([]);
    expect(scanProblems([...a, ...b.slice().reverse()])).not.toEqual([]);
  });
});

describe('ProtectedStorage across worker threads', () => {
  it(`${WRITERS} writers × ${BATCHES} batches and ${READERS} readers: whole batches only, no torn rows`, async () => {
    const handle = openStorage();
    const flags = new Int32Array(new SharedArrayBuffer(FLAG_WORDS * 4));
    const common = { handle, flags: flags.buffer, batches: BATCHES, writers: WRITERS, readers: READERS };
    const writers = Array.from({ length: WRITERS }, (_, id) => start({ ...common, mode: 'write', id }));
    const readers = Array.from({ length: READERS }, (_, id) => start({ ...common, mode: 'read', id }));
    await waitWord(flags, Flag.READY, WRITERS + READERS);
    set(flags, Flag.GO);
    await Promise.all(writers.map((w) => w.next((m) => m.done === true)));
    set(flags, Flag.STOP);
    const reports = await Promise.all(readers.map((r) => r.next((m) => m.done === true)));
    expect(await Promise.all([...writers, ...readers].map((w) => w.exited))).toEqual(Array(WRITERS + READERS).fill(0));

    let total = 0;
    let half = 0;
    for (let w = 0; w < WRITERS; w++) {
      for (let b = 0; b < BATCHES; b++) {
        total += batchSize(w, b);
        if (b < BATCHES >> 1) half += batchSize(w, b);
      }
    }
    for (const r of reports) {
      expect(r.problems).toEqual([]);
      const scans = r.scans as Array<{ size: number; mid: boolean }>;
      expect(scans.length).toBeGreaterThan(0);
      for (const s of scans) expect(s.size >= 0 && s.size <= total).toBe(true);
    }
    // The first scan started with every writer parked halfway saw exactly the first halves.
    const midSizes = reports.flatMap((r) => (r.scans as Array<{ size: number; mid: boolean }>).filter((s) => s.mid).map((s) => s.size));
    expect(midSizes).toContain(half);

    const text = readFileSync(handle.path, 'utf8');
    expect(text.endsWith('\r\n')).toBe(true);
    const lines = text.slice(0, -2).split('\r\n');
    expect(lines).toHaveLength(total);
    for (const line of lines) {
      expect(line).not.toMatch(/[\r\n]/);
      expect(parseRow(line)).toHaveLength(6);
    }
    const bets = await loadAll(handle.path);
    expect(bets).toHaveLength(total);
    expect(scanProblems(bets)).toEqual([]);
    const batches = new Set(
      bets.map((bet) => {
        const t = tagOf(bet);
        return `${t.w}/${t.b}`;
      }),
    );
    expect(batches.size).toBe(WRITERS * BATCHES);
  });

  it('a blocking writer waits for a lock held by another worker, then writes', async () => {
    const handle = openStorage();
    const flags = new Int32Array(new SharedArrayBuffer(FLAG_WORDS * 4));
    const holder = start({ mode: 'hold', lock: 'write', handle, flags: flags.buffer });
    await holder.next((m) => m.held === true);
    const writerFlags = new Int32Array(new SharedArrayBuffer(FLAG_WORDS * 4));
    set(writerFlags, Flag.GO);
    const writer = start({ mode: 'write', id: 3, batches: 1, writers: 1, readers: 0, handle, flags: writerFlags.buffer });
    // The writer announces itself in the lock's "writers waiting" word before it parks.
    const lockWords = new Int32Array(handle.lock);
    while (Atomics.load(lockWords, 1) === 0) await new Promise((r) => setImmediate(r));
    expect(readFileSync(handle.path, 'utf8')).toBe('');
    set(flags, Flag.STOP);
    await writer.next((m) => m.done === true);
    expect(await loadAll(handle.path)).toHaveLength(batchSize(3, 0));
    expect([await holder.exited, await writer.exited]).toEqual([0, 0]);
  });
});

/** A main-thread storage holding bet '1', and a worker that holds the lock until told to stop. */
async function mainBesideHolder(lock: 'read' | 'write') {
  const handle = openStorage();
  const main = new ProtectedStorage(handle, false);
  main.storeBets([sample('1')]);
  const flags = new Int32Array(new SharedArrayBuffer(FLAG_WORDS * 4));
  const holder = start({ mode: 'hold', lock, handle, flags: flags.buffer });
  await holder.next((m) => m.held === true);
  return { handle, main, flags, holder };
}

describe('main-thread (non-blocking) ProtectedStorage', () => {
  it('throws LockBusyError instead of waiting while a worker holds the write lock', async () => {
    const { handle, main, flags, holder } = await mainBesideHolder('write');

    expect(() => main.storeBets([sample('2')])).toThrow(LockBusyError);
    await expect(main.loadBets().next()).rejects.toThrow(LockBusyError);
    expect(readFileSync(handle.path, 'utf8').split('\r\n')).toHaveLength(2);

    set(flags, Flag.STOP);
    await holder.next((m) => m.released === true);
    main.storeBets([sample('3')]);
    const back: Bet[] = [];
    for await (const bet of main.loadBets()) back.push(bet);
    expect(back.map((b) => b.document)).toEqual(['1', '3']);
    expect(await holder.exited).toBe(0);
  });

  it('refuses to write but may read while a worker holds a read lock', async () => {
    const { handle, main, flags, holder } = await mainBesideHolder('read');

    expect(() => main.storeBets([sample('2')])).toThrow(LockBusyError);
    const back: Bet[] = [];
    for await (const bet of main.loadBets()) back.push(bet);
    expect(back.map((b) => b.document)).toEqual(['1']);

    set(flags, Flag.STOP);
    await holder.next((m) => m.released === true);
    main.storeBets([sample('2')]);
    expect((await loadAll(handle.path)).map((b) => b.document)).toEqual(['1', '2']);
    expect(await holder.exited).toBe(0);
  });
});
