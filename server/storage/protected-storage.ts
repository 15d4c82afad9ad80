/**
 * Monitor around storeBets/loadBets. Appends take the write lock, scans take a read lock,
 * both on a SharedArrayBuffer shared by every pool worker. Invariants:
 *  - a batch is one write() of whole rows under the write lock: rows of two batches never
 *    interleave and a reader never sees part of a batch;
 *  - the file descriptor is opened once, by the owner (main thread), in append mode; fds
 *    are process-wide, so workers write to it directly.
 */
import { closeSync, fstatSync, ftruncateSync, openSync } from 'node:fs';
import type { Bet } from '../../shared/domain/bet.js';
import { betsToRows, loadBetChunks, writeAll } from './bets-file.js';
import { LockBusyError, RWLock } from '../sync/rw-lock.js';

/** What a worker needs to attach to the storage: plain data, sent through workerData. */
export interface StorageHandle {
  lock: SharedArrayBuffer;
  fd: number;
  path: string;
}

/**
 * Appends all of `rows` or nothing: a write that fails part-way (disk full, I/O error) is
 * cut back to where it started, so no torn row is left for the next batch to follow.
 * Call only under the write lock.
 */
function appendWhole(fd: number, rows: Buffer): void {
  const size = fstatSync(fd).size;
  try {
    writeAll(fd, rows);
  } catch (err) {
    ftruncateSync(fd, size);
    throw err;
  }
}

const closed = new WeakSet<StorageHandle>();

export class ProtectedStorage {
  readonly #lock: RWLock;
  readonly #handle: StorageHandle;
  readonly #block: boolean;

  /** `block` is false on the main thread: it never waits, and fails if the lock is taken. */
  constructor(handle: StorageHandle, block: boolean) {
    this.#handle = handle;
    this.#lock = new RWLock(handle.lock);
    this.#block = block;
  }

  /** Opens (creating if needed) the bets file for appending. Owner side only. */
  static open(path: string): StorageHandle {
    return { lock: RWLock.allocate(), fd: openSync(path, 'a'), path };
  }

  /** Idempotent: a second close must not close whatever file has since reused the fd number. */
  static close(handle: StorageHandle): void {
    if (closed.has(handle)) return;
    closed.add(handle);
    closeSync(handle.fd);
  }

  get path(): string {
    return this.#handle.path;
  }

  /** Stores the whole batch, or nothing if formatting fails before the lock is taken. */
  storeBets(bets: readonly Bet[]): void {
    this.storeRows(betsToRows(bets));
  }

  /**
   * Appends rows already formatted as betsToRows would (whole CRLF-terminated rows of one
   * or more batches), in one write under the write lock.
   */
  storeRows(rows: Buffer): void {
    this.#lock.withWrite(() => appendWhole(this.#handle.fd, rows), this.#block);
  }

  /**
   * Streams every stored bet, in chunks (see loadBetChunks), while holding a read lock: no
   * append can land mid-scan.
   */
  async *loadBetChunks(): AsyncGenerator<Bet[]> {
    if (this.#block) this.#lock.acquireRead();
    else if (!this.#lock.tryAcquireRead()) throw new LockBusyError('read');
    try {
      yield* loadBetChunks(this.#handle.path);
    } finally {
      this.#lock.releaseRead();
    }
  }

  /** Every stored bet one by one, under the read lock (see loadBetChunks). */
  async *loadBets(): AsyncGenerator<Bet> {
    for await (const chunk of this.loadBetChunks()) yield* chunk;
  }
}
