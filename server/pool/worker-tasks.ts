/**
 * The work done for each task, the same on a pool worker and inline on the main thread
 * (SERVER_WORKERS=0, kept for benchmarks). Results are returned, and only DEBUG per-bet
 * lines are logged here (synchronously, so none is lost).
 */
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { MIN_ENCODED_BET, decodeBets } from '../../shared/protocol/bet-codec.js';
import { ProtectedNotificationCounter } from '../sync/notification-counter.js';
import { betsToRows } from '../storage/bets-file.js';
import { DrawTooEarlyError } from '../storage/backend.js';
import { ProtectedStorage, type ConsumedBatch } from '../storage/protected-storage.js';
import { maxRowsSize, transcodeBatch } from './transcode.js';
import type { BatchRef, DrawResult, StoreBatchResult, StoreBatchesResult, StoreBatchesTask, WorkerInit } from './tasks.js';
import { TaskKind, type Task, type TaskResult } from './tasks.js';

export interface WorkerTasks {
  run(task: Task): Promise<TaskResult>;
}

/** `onMainThread` makes the storage refuse to wait on its lock instead of blocking. */
export function createWorkerTasks(init: WorkerInit, onMainThread: boolean): WorkerTasks {
  const storage = new ProtectedStorage(init.storage, !onMainThread);
  const counter = new ProtectedNotificationCounter(init.counter);
  const log = createLogger({ level: init.logLevel, format: init.logFormat });
  return {
    async run(task: Task): Promise<TaskResult> {
      switch (task.kind) {
        case TaskKind.STORE_BATCHES:
          return storeBatches(storage, log, task);
        case TaskKind.DRAW:
          return draw(storage, counter);
        case TaskKind.RECORD_FINISHED:
          await storage.recordFinished(task.agency);
          return null;
      }
    },
  };
}

/**
 * Scratch for the rows of one task, reused task after task: storeRows writes the rows before
 * its first await, so nothing refers to it once storeBatches has called it (a worker runs
 * the next task while this one's flush is under way). A fresh buffer per task is external
 * memory that V8 collects late (docs/benchmarks.md).
 */
let scratch = Buffer.alloc(0);
const SCRATCH_KEEP = 4 << 20;

function rowsBuffer(size: number): Buffer {
  if (size <= scratch.length) return scratch;
  const buf = Buffer.allocUnsafe(size);
  if (size <= SCRATCH_KEEP) scratch = buf;
  return buf;
}

/**
 * Validates every batch on its own, then appends the valid ones of every run in a single
 * write, recording every batch (a refused one as consumed, with no rows) in the journal at
 * the write's turn (ProtectedStorage.storeRows): a bad batch loses only itself, each good batch
 * lands whole, and the rows of one run stay together. Batches go through transcodeBatch; one
 * it declines takes the slow path (decodeBets), which stores unusual but valid text the same
 * way and words the reason of a bad bet.
 */
async function storeBatches(storage: ProtectedStorage, log: Logger, task: StoreBatchesTask): Promise<StoreBatchesResult> {
  const src = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
  // A batch whose count cannot fit in its bytes is refused before anything is sized by it.
  const total = task.runs.reduce((n, run) => run.batches.reduce((m, b) => m + (fits(b) ? b.count : 0), n), 0);
  const out = rowsBuffer(maxRowsSize(src.length, total));
  const parts: Buffer[] = [];
  const consumed: ConsumedBatch[] = [];
  let segment = 0;
  let o = 0;
  const results = task.runs.map((run) =>
    run.batches.map((ref): StoreBatchResult => {
      const bytes = src.subarray(ref.start, ref.end);
      const key = { agency: run.agency, first: ref.first, count: ref.count };
      if (!fits(ref)) {
        consumed.push({ ...key, stored: 0, bytes: 0 });
        return tooShort(ref);
      }
      const end = transcodeBatch(bytes, ref.count, run.agency, out, o);
      if (end !== null) {
        consumed.push({ ...key, stored: ref.count, bytes: end - o });
        o = end;
        return { ok: true, stored: ref.count };
      }
      const decoded = decodeBets(bytes, ref.count, run.agency);
      if (!decoded.ok) {
        consumed.push({ ...key, stored: 0, bytes: 0 });
        return decoded;
      }
      const rows = betsToRows(decoded.bets);
      parts.push(out.subarray(segment, o), rows);
      segment = o;
      consumed.push({ ...key, stored: decoded.bets.length, bytes: rows.length });
      return { ok: true, stored: decoded.bets.length };
    }),
  );
  parts.push(out.subarray(segment, o));
  const rows = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  const fsyncSeconds = await storage.storeRows(rows, consumed);
  // Nothing after the write may fail the task: its rows are on disk, so its batches must be acked.
  if (log.isLevelEnabled('debug')) {
    try {
      logStored(log, src, task);
    } catch {
      // DEBUG detail only.
    }
  }
  return { runs: results, fsyncSeconds };
}

/** Whether `count` bets could fit in the batch's bytes at all (MIN_ENCODED_BET each). */
function fits(ref: BatchRef): boolean {
  return ref.count * MIN_ENCODED_BET <= ref.end - ref.start;
}

function tooShort(ref: BatchRef): StoreBatchResult {
  const bytes = ref.end - ref.start;
  const index = Math.floor(bytes / MIN_ENCODED_BET);
  return { ok: false, index, reason: `${ref.count} bets cannot fit in ${bytes} bytes; bet ${index} is missing` };
}

function logStored(log: Logger, src: Buffer, task: StoreBatchesTask): void {
  for (const run of task.runs) {
    for (const ref of run.batches) {
      const decoded = decodeBets(src.subarray(ref.start, ref.end), ref.count, run.agency);
      if (!decoded.ok) continue;
      for (const bet of decoded.bets) {
        log.debug({ action: 'apuesta_almacenada', result: 'success', agencia: bet.agency, dni: bet.document, numero: bet.number });
      }
    }
  }
}

async function draw(storage: ProtectedStorage, counter: ProtectedNotificationCounter): Promise<DrawResult> {
  if (!counter.allFinished) throw new DrawTooEarlyError(counter.finished, counter.expected);
  const result = await storage.scanWinners();
  storage.recordDraw(result.winners, result.scanned);
  return result;
}
