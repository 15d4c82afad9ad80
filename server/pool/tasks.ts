/**
 * Everything that crosses the main-thread / pool-worker boundary: plain data only
 * (structured-clone safe), typed here and nowhere else.
 */
import type { StorageHandle } from '../storage/storage-handle.js';

export const TaskKind = { STORE_BATCHES: 'store_batches', DRAW: 'draw', RECORD_FINISHED: 'record_finished' } as const;

/** Sent once to every worker as `workerData`. */
export interface WorkerInit {
  storage: StorageHandle;
  counter: SharedArrayBuffer;
  logLevel: string;
  logFormat: string;
}

/** Where one BATCH frame's bets sit inside a StoreBatchesTask's `bytes`. */
export interface BatchRef {
  /** The batch's idempotency key with the run's agency: index of its first bet, and count. */
  first: number;
  count: number;
  start: number;
  end: number;
}

/** Consecutive BATCH frames of one agency (one session's run), still encoded. */
export interface StoreRun {
  agency: number;
  batches: BatchRef[];
}

/**
 * The runs of every session that asked in one event-loop turn, or while every worker held its
 * two store tasks (or the draw ran), in one task: one hop to a worker and one write for all of them (group commit). `bytes` holds every batch's bets back
 * to back, in a SharedArrayBuffer: shared, not copied.
 */
export interface StoreBatchesTask {
  kind: typeof TaskKind.STORE_BATCHES;
  runs: StoreRun[];
  bytes: Uint8Array;
}

/** The outcome of one batch: each batch is stored whole or not at all, on its own. */
export type StoreBatchResult = { ok: true; stored: number } | { ok: false; index: number; reason: string };

export interface DrawTask {
  kind: typeof TaskKind.DRAW;
}

/** Winners by agency (agencies without winners are absent) and how many bets were read. */
export interface DrawResult {
  winners: Array<[agency: number, documents: string[]]>;
  scanned: number;
}

/** Writes the agency's FINISHED into the journal, after every batch of it already there. */
export interface RecordFinishedTask {
  kind: typeof TaskKind.RECORD_FINISHED;
  agency: number;
}

export type Task = StoreBatchesTask | DrawTask | RecordFinishedTask;
/**
 * A store task's outcome: one StoreBatchResult[] per run, in order, and the seconds its group
 * commit spent flushing to the disk (null with SERVER_FSYNC off), for the metrics.
 */
export interface StoreBatchesResult {
  runs: StoreBatchResult[][];
  fsyncSeconds: number | null;
}

/** null for RECORD_FINISHED. */
export type TaskResult = StoreBatchesResult | DrawResult | null;
