/**
 * The storage's plain-data handle (what a pool worker needs to attach to it, sent through
 * workerData), opened and closed by its owner, the main thread. The file descriptors are
 * process-wide, so workers write through them directly (protected-storage.ts).
 */
import { closeSync, fdatasyncSync, fstatSync, openSync } from 'node:fs';
import { AgencyProgress } from '../sync/agency-progress.js';
import { CommitOrder } from '../sync/commit-order.js';
import { RWLock } from '../sync/rw-lock.js';
import type { JournalHandle } from './journal.js';

/** What a worker needs to attach to the storage: plain data, sent through workerData. */
export interface StorageHandle {
  lock: SharedArrayBuffer;
  fd: number;
  path: string;
  /** null: rows only, nothing remembered across a restart (tests of the bare storage). */
  journal: JournalHandle | null;
  /** With a journal: each agency's `next` (sync/agency-progress.ts), moved under the write lock. */
  progress: SharedArrayBuffer | null;
  /** With a journal: the order in which writes commit (sync/commit-order.ts). */
  order: SharedArrayBuffer | null;
}

/** The journal and winners files that belong to a bets file. */
export function durablePaths(betsPath: string): { journal: string; winners: string } {
  return { journal: `${betsPath}.journal`, winners: `${betsPath}.winners` };
}

/**
 * Opens (creating if needed) the bets file for appending, and with `durable` its journal,
 * which recovery (durable-state.ts) must have checked and repaired first; the commit order
 * starts at the bets file's size.
 */
export function openStorageHandle(path: string, durable?: { fsync: boolean; next: readonly number[] }): StorageHandle {
  const fd = openSync(path, 'a');
  if (durable === undefined) return { lock: RWLock.allocate(), fd, path, journal: null, progress: null, order: null };
  const paths = durablePaths(path);
  const journal = { fd: openSync(paths.journal, 'a'), path: paths.journal, winnersPath: paths.winners, fsync: durable.fsync };
  const order = CommitOrder.allocate(fstatSync(fd).size);
  return { lock: RWLock.allocate(), fd, path, journal, progress: AgencyProgress.allocate(durable.next), order };
}

const closed = new WeakSet<StorageHandle>();

/**
 * Flushes the files to the disk (whatever SERVER_FSYNC says: once, at the end) and closes
 * them. Idempotent: a second close must not close whatever file has since reused the fd number.
 */
export function closeStorageHandle(handle: StorageHandle): void {
  if (closed.has(handle)) return;
  closed.add(handle);
  try {
    if (handle.journal !== null) {
      const journalFd = handle.journal.fd;
      try {
        // Through a description of its own, as the writes' flushes: handle.fd may still hold a
        // failed write-back that a cut-back has already dealt with (ProtectedStorage.#flushed).
        const fd = openSync(handle.path, 'r');
        try {
          fdatasyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } finally {
        fdatasyncSync(journalFd);
      }
    }
  } finally {
    closeSync(handle.fd);
    if (handle.journal !== null) closeSync(handle.journal.fd);
  }
}
