/**
 * Monitor around storeBets/loadBets and the journal. Appends take the write lock, scans take
 * a read lock, both on a SharedArrayBuffer shared by every pool worker. Invariants:
 *  - a batch is one write() of whole rows under the write lock: rows of two batches never
 *    interleave and a reader never sees part of a batch;
 *  - with a journal, the records of a write's batches are appended at the write's turn in the
 *    commit order (sync/commit-order.ts), after the rows (and, with fsync, after a flush that
 *    started once they were written): journal order is file order, and a record never names
 *    bytes that could be missing; rows after the last committed write are not bets yet;
 *  - the file descriptors are opened once, by the owner (main thread), in append mode; fds
 *    are process-wide, so workers write to them directly. Each flush of the bets file opens
 *    a description of its own (see #flushed).
 */
import { closeSync, fdatasync, fstatSync, ftruncateSync, openSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Bet } from '../../shared/domain/bet.js';
import { betsToRows, loadBetChunks, writeAll } from './bets-file.js';
import { RecordKind, appendRecords, cutBack, encodeRecords, type BatchRecord } from './journal.js';
import { AgencyProgress } from '../sync/agency-progress.js';
import { CommitOrder, CommitOrderBrokenError, type Ticket } from '../sync/commit-order.js';
import { RWLock } from '../sync/rw-lock.js';
import { writeWinnersFile, type Winners } from './winners-file.js';
import { scanWinners, type WinnersScan } from './winners-scan.js';
import { closeStorageHandle, openStorageHandle, type StorageHandle } from './storage-handle.js';

/**
 * A write whose rows were cut back, with every row written after the last committed write,
 * because a flush or a record failed: none of its batches was stored.
 */
export class RowsCutBackError extends Error {
  constructor(why: string, cause?: unknown) {
    super(
      `${why}; the rows written since the last committed write were cut back, and no batch of this write was stored (its client sends it again)`,
      { cause },
    );
    this.name = 'RowsCutBackError';
  }
}

const fdatasyncAsync = promisify(fdatasync);

/** One batch of a write, for its journal record: `bytes` of rows it put in the write (0 if refused). */
export type ConsumedBatch = Omit<BatchRecord, 'kind' | 'end'> & { bytes: number };

/**
 * Appends all of `rows` or nothing: a write that fails part-way (disk full, I/O error) is
 * cut back to where it started, so no torn row is left for the next batch to follow.
 * Returns the file's size before the write. Call only under the write lock.
 */
function appendWhole(fd: number, rows: Buffer): number {
  const size = fstatSync(fd).size;
  try {
    writeAll(fd, rows);
  } catch (err) {
    cutBack(fd, size);
    throw err;
  }
  return size;
}

/** The batches' records, each `end` being where its rows end in the file (they follow `start`, in order). */
function batchRecords(batches: readonly ConsumedBatch[], start: number): Buffer {
  let end = start;
  return encodeRecords(
    batches.map(({ bytes, ...b }) => {
      end += bytes;
      return { kind: RecordKind.BATCH, ...b, end };
    }),
  );
}

export class ProtectedStorage {
  readonly #lock: RWLock;
  readonly #handle: StorageHandle;
  readonly #block: boolean;
  readonly #progress: AgencyProgress | null;
  readonly #order: CommitOrder | null;

  readonly #flush: (fd: number) => Promise<void>;

  /**
   * `block` is false on the main thread: it never waits, and fails if the lock is taken.
   * `flush` makes a file's written data durable (fdatasync, off the thread); tests pass one
   * that fails or holds back.
   */
  constructor(handle: StorageHandle, block: boolean, flush: (fd: number) => Promise<void> = fdatasyncAsync) {
    this.#handle = handle;
    this.#flush = flush;
    this.#lock = new RWLock(handle.lock);
    this.#block = block;
    this.#progress = handle.progress === null ? null : new AgencyProgress(handle.progress);
    this.#order = handle.order === null ? null : new CommitOrder(handle.order);
  }

  /**
   * Opens (creating if needed) the bets file for appending, and with `durable` its journal,
   * which recovery (durable-state.ts) must have checked and repaired first. Owner side only.
   */
  static open(path: string, durable?: { fsync: boolean; next: readonly number[] }): StorageHandle {
    return openStorageHandle(path, durable);
  }

  /** Flushes and closes the handle's files (storage-handle.ts); idempotent. */
  static close(handle: StorageHandle): void {
    closeStorageHandle(handle);
  }

  get path(): string {
    return this.#handle.path;
  }

  /**
   * Stores the whole batch, or nothing if formatting fails before the lock is taken. Only
   * for a storage without a journal: with one, batches go through storeRows and its records.
   */
  storeBets(bets: readonly Bet[]): void {
    if (this.#handle.journal !== null) throw new Error('storeBets would leave rows without journal records: use storeRows');
    this.#appendBare(betsToRows(bets));
  }

  /** Without a journal: the rows in one write under the write lock, nothing recorded. */
  #appendBare(rows: Buffer): void {
    this.#lock.withWrite(() => appendWhole(this.#handle.fd, rows), this.#block);
  }

  /**
   * Appends rows already formatted as betsToRows would (whole CRLF-terminated rows of one
   * or more batches), in one write under the write lock; with a journal, then records
   * `batches` (every batch the rows came from, in order, refused ones too). With fsync the
   * rows reach the disk before their records are written, and the records before this
   * resolves: one flush of each file for every batch of the write (group commit).
   *
   * The bets file's flush runs outside the lock and off the thread, so the next write (this
   * worker's next task, or another worker's) and its flush go on meanwhile; the records then
   * wait for the write's turn (sync/commit-order.ts). If a flush or a record fails, every row
   * not yet committed is cut back, and each write whose rows that took fails: nothing of it
   * was stored. Resolves to the seconds the flushes took (the bets file's fdatasync, waiting
   * for the turn, then the records written and flushed): the durability cost of this group
   * commit; null without fsync. With `block` false (inline, on the main thread) the lock must
   * never be taken by anyone else: BetPool runs the draw, the one reader, alone.
   */
  async storeRows(rows: Buffer, batches: readonly ConsumedBatch[] = []): Promise<number | null> {
    const bytes = batches.reduce((n, b) => n + b.bytes, 0);
    const journal = this.#handle.journal;
    if (journal !== null && bytes !== rows.length) throw new RangeError(`the batches account for ${bytes} bytes of ${rows.length}`);
    const order = this.#order;
    if (journal === null) {
      this.#appendBare(rows);
      return null;
    }
    if (order === null) throw new Error('a journaled storage handle has no commit order: open it with ProtectedStorage.open');
    if (batches.length === 0) return null;
    const flushFd = journal.fsync && rows.length > 0 ? openSync(this.#handle.path, 'r') : null;
    let written: { start: number; ticket: Ticket };
    try {
      written = this.#lock.withWrite(() => {
        order.checkUsable();
        return { start: appendWhole(this.#handle.fd, rows), ticket: order.take() };
      }, this.#block);
    } catch (err) {
      if (flushFd !== null) closeSync(flushFd);
      throw err;
    }
    const { start, ticket } = written;
    const flushing = performance.now();
    // A failed flush has cut back already; the write still fails, and passes, at its turn only.
    const flush =
      flushFd === null
        ? null
        : this.#flushed(order, flushFd).then(
            () => null,
            (err: unknown) => ({ err }),
          );
    const failed = await flush;
    await order.turn(ticket);
    try {
      if (failed) throw failed.err;
      return this.#lock.withWrite(() => {
        // Checked under the lock the cut-back takes: a flush failing now cannot cut these rows after the check.
        if (!order.current(ticket)) throw new RowsCutBackError('an earlier write failed to reach the disk');
        try {
          appendRecords(journal, batchRecords(batches, start));
        } catch (err) {
          this.#cutUncommitted(order);
          throw err;
        }
        order.committed(start + rows.length);
        for (const b of batches) this.#progress?.advance(b.agency, b.first + b.count);
        return journal.fsync ? (performance.now() - flushing) / 1000 : null;
      }, this.#block);
    } finally {
      order.pass(ticket);
    }
  }

  /**
   * Flushes the bets file through `fd`, a description of its own opened before the write, and
   * closes it. Linux tells a failed write-back to every open description of the file once
   * (errseq), so a flush on a description shared with another flush in flight could be told
   * nothing of an error the other was told about; on its own description, success means the
   * write's pages are on the disk. A failed flush cuts back every uncommitted row and rejects.
   */
  async #flushed(order: CommitOrder, fd: number): Promise<void> {
    try {
      await this.#flush(fd);
    } catch (err) {
      this.#lock.withWrite(() => this.#cutUncommitted(order), this.#block);
      throw new RowsCutBackError(`fdatasync of ${this.#handle.path} failed (${(err as Error).message})`, err);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Where the committed rows end: rows after it are written but their write may still fail
   * (its flush under way), so they are not stored bets yet. Without a commit order, every row
   * is committed as it is written.
   */
  #committedEnd(): number {
    return this.#order?.committedEnd ?? fstatSync(this.#handle.fd).size;
  }

  /**
   * Under the write lock: cuts back every row written after the last committed write. If even
   * the cut fails, rows nobody acknowledged stay in the file, and a write committed after them
   * would make them bets: the order then refuses every write until a restart's recovery cuts them.
   */
  #cutUncommitted(order: CommitOrder): void {
    order.cutBack();
    try {
      ftruncateSync(this.#handle.fd, order.committedEnd);
    } catch (err) {
      order.breakDown();
      throw new CommitOrderBrokenError(
        `cutting ${this.#handle.path} back to ${order.committedEnd} bytes failed (${(err as Error).message})`,
        err,
      );
    }
  }

  /**
   * Records durably that `agency` sent FINISHED (no-op without a journal), at its turn: after
   * the records of every write that took its ticket before, so a FINISHED asked after a run
   * lands after that run's records even while the run's flush is under way.
   */
  async recordFinished(agency: number): Promise<void> {
    const journal = this.#handle.journal;
    if (journal === null) return;
    const append = (): void => appendRecords(journal, encodeRecords([{ kind: RecordKind.FINISHED, agency }]));
    const order = this.#order;
    if (order === null) return this.#lock.withWrite(append, this.#block);
    const ticket = this.#lock.withWrite(() => order.take(), this.#block);
    await order.turn(ticket);
    try {
      this.#lock.withWrite(append, this.#block);
    } finally {
      order.pass(ticket);
    }
  }

  /**
   * Makes the draw's result durable (no-op without a journal): the winners file first, whole
   * (winners-file.ts), then the DRAW record naming its checksum. A crash in between leaves a
   * winners file and no record: recovery drops the file and the draw runs again.
   */
  recordDraw(winners: Winners, scanned: number): void {
    const journal = this.#handle.journal;
    if (journal === null) return;
    const file = writeWinnersFile(journal.winnersPath, winners, journal.fsync);
    this.#lock.withWrite(() => {
      const end = this.#committedEnd();
      const draw = { kind: RecordKind.DRAW, winners: file.count, scanned, end, winnersCrc: file.crc } as const;
      appendRecords(journal, encodeRecords([draw]));
    }, this.#block);
  }

  /**
   * Streams every row of the bets file, in chunks (see loadBetChunks), while holding a read
   * lock: no append can land mid-scan. For tests and tools: unlike the draw's scan, it also
   * reads rows written after the last committed write (a write whose flush is under way).
   */
  async *loadBetChunks(): AsyncGenerator<Bet[]> {
    this.#lock.enterRead(this.#block);
    try {
      yield* loadBetChunks(this.#handle.path);
    } finally {
      this.#lock.releaseRead();
    }
  }

  /** The draw's scan of the stored bets (winners-scan.ts), under the read lock. */
  async scanWinners(): Promise<WinnersScan> {
    this.#lock.enterRead(this.#block);
    try {
      return await scanWinners(this.#handle.path, { end: this.#committedEnd() });
    } finally {
      this.#lock.releaseRead();
    }
  }

  /** Every stored bet one by one, under the read lock (see loadBetChunks). */
  async *loadBets(): AsyncGenerator<Bet> {
    for await (const chunk of this.loadBetChunks()) yield* chunk;
  }
}
