/**
 * The work done for each task, the same on a pool worker and inline on the main thread
 * (SERVER_WORKERS=0, kept for benchmarks). Results are returned, and only DEBUG per-bet
 * lines are logged here (synchronously, so none is lost).
 */
import { hasWon } from '../../shared/domain/bet.js';
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { decodeBets } from '../../shared/protocol/bet-codec.js';
import { ProtectedNotificationCounter } from '../storage/notification-counter.js';
import { ProtectedStorage } from '../storage/protected-storage.js';
import { TaskKind, type DrawResult, type StoreBatchResult, type StoreBatchTask, type Task, type TaskResult, type WorkerInit } from './tasks.js';

export class DrawTooEarlyError extends Error {
  constructor(finished: number, expected: number) {
    super(`the draw was asked for with ${finished} of ${expected} agencies finished`);
    this.name = 'DrawTooEarlyError';
  }
}

export interface Handlers {
  run(task: Task): Promise<TaskResult>;
}

/** `onMainThread` makes the storage refuse to wait on its lock instead of blocking. */
export function createHandlers(init: WorkerInit, onMainThread: boolean): Handlers {
  const storage = new ProtectedStorage(init.storage, !onMainThread);
  const counter = new ProtectedNotificationCounter(init.counter);
  const log = createLogger({ level: init.logLevel, format: init.logFormat });
  return {
    async run(task: Task): Promise<TaskResult> {
      switch (task.kind) {
        case TaskKind.STORE_BATCH:
          return storeBatch(storage, log, task);
        case TaskKind.DRAW:
          return draw(storage, counter);
      }
    },
  };
}

function storeBatch(storage: ProtectedStorage, log: Logger, task: StoreBatchTask): StoreBatchResult {
  const bytes = Buffer.from(task.bets.buffer, task.bets.byteOffset, task.bets.byteLength);
  const decoded = decodeBets(bytes, task.count, task.agency);
  if (!decoded.ok) return decoded;
  storage.storeBets(decoded.bets);
  if (log.isLevelEnabled('debug')) {
    for (const bet of decoded.bets) {
      log.debug({ action: 'apuesta_almacenada', result: 'success', agencia: bet.agency, dni: bet.document, numero: bet.number });
    }
  }
  return { ok: true, stored: decoded.bets.length };
}

async function draw(storage: ProtectedStorage, counter: ProtectedNotificationCounter): Promise<DrawResult> {
  if (!counter.allFinished) throw new DrawTooEarlyError(counter.finished, counter.expected);
  const winners = new Map<number, string[]>();
  let scanned = 0;
  for await (const bet of storage.loadBets()) {
    scanned++;
    if (!hasWon(bet)) continue;
    const list = winners.get(bet.agency);
    if (list === undefined) winners.set(bet.agency, [bet.document]);
    else list.push(bet.document);
  }
  return { winners: [...winners], scanned };
}
