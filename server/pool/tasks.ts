/**
 * Everything that crosses the main-thread / pool-worker boundary: plain data only
 * (structured-clone safe), typed here and nowhere else.
 */
import type { StorageHandle } from '../storage/protected-storage.js';

export const TaskKind = { STORE_BATCH: 'store_batch', DRAW: 'draw' } as const;

/** Sent once to every worker as `workerData`. */
export interface WorkerInit {
  storage: StorageHandle;
  counter: SharedArrayBuffer;
  logLevel: string;
  logFormat: string;
}

/** One BATCH frame's bets, still encoded; `bets` is transferred, not copied. */
export interface StoreBatchTask {
  kind: typeof TaskKind.STORE_BATCH;
  agency: number;
  seq: number;
  count: number;
  bets: Uint8Array;
}

export type StoreBatchResult =
  | { ok: true; stored: number }
  | { ok: false; index: number; reason: string };

export interface DrawTask {
  kind: typeof TaskKind.DRAW;
}

/** Winners by agency (agencies without winners are absent) and how many bets were read. */
export interface DrawResult {
  winners: Array<[agency: number, documents: string[]]>;
  scanned: number;
}

export type Task = StoreBatchTask | DrawTask;
export type TaskResult = StoreBatchResult | DrawResult;
