/**
 * Durable storage as the server will assemble it, for tests and the crash fixture: recovery,
 * then the bets file and its journal opened for a real pool. Bets are numbered per agency so
 * that their rows can be written out independently of the code under test.
 */
import { BetPool, type EncodedBatch } from '../../server/pool/bet-pool.js';
import { recoverDurableState, type RecoveredState } from '../../server/storage/durable-state.js';
import { ProtectedNotificationCounter } from '../../server/sync/notification-counter.js';
import { ProtectedStorage } from '../../server/storage/protected-storage.js';
import type { StorageHandle } from '../../server/storage/storage-handle.js';
import type { Bet } from '../../shared/domain/bet.js';
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { parseLogLine, type LogLine } from '../../shared/logging/parse.js';
import { BatchBuilder } from '../../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage } from '../../shared/protocol/codec.js';
import type { BatchDTO } from '../../shared/protocol/messages.js';

/** Bet `i` of agency `a`: every 50th plays the winning number 7574. */
export function numberedBet(a: number, i: number): Bet {
  return {
    agency: a,
    firstName: 'Ana',
    lastName: 'Paz',
    document: String(a * 10_000_000 + i),
    birthdate: '1990-01-31',
    number: i % 50 === 7 ? 7574 : i % 10_000,
  };
}

/** The stored row of numberedBet(a, i), written out by hand. */
export function numberedRow(a: number, i: number): string {
  return `${a},Ana,Paz,${a * 10_000_000 + i},1990-01-31,${i % 50 === 7 ? 7574 : i % 10_000}\r\n`;
}

/** BATCH frames of agency `a` from bet `first`, of the given sizes, as a session decodes them. */
export function numberedBatches(
  a: number,
  first: number,
  sizes: readonly number[],
  bad: (i: number) => boolean = () => false,
): EncodedBatch[] {
  let i = first;
  return sizes.map((size) => {
    const b = new BatchBuilder(size);
    const start = i;
    for (let k = 0; k < size; k++, i++) {
      const bet = numberedBet(a, i);
      if (!b.add(bad(i) ? { ...bet, birthdate: '1990-02-30' } : bet)) throw new Error('batch too large for one frame');
    }
    const [frame] = new FrameDecoder().push(b.take(start));
    return decodeMessage(frame!) as BatchDTO;
  });
}

export function collectingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = createLogger({
    level: 'info',
    format: 'text',
    destination: {
      write(l: string) {
        const parsed = parseLogLine(l);
        if (parsed !== null) lines.push(parsed);
      },
    },
  });
  return { log, lines };
}

export interface OpenDurable {
  state: RecoveredState;
  pool: BetPool;
  handle: StorageHandle;
  counter: ProtectedNotificationCounter;
  close(): Promise<void>;
}

/** Recovers `path`, then opens it for a pool of `workers` (the agencies recovered as finished are marked so). */
export function openDurable(
  path: string,
  agencies: number,
  opts: { fsync: boolean; workers?: number; log?: Logger; onFsync?: (seconds: number) => void },
): OpenDurable {
  const log = opts.log ?? collectingLogger().log;
  const state = recoverDurableState(path, agencies, log);
  const handle = ProtectedStorage.open(path, { fsync: opts.fsync, next: state.agencies.map((a) => a.next) });
  const counterSab = ProtectedNotificationCounter.allocate(agencies);
  const counter = new ProtectedNotificationCounter(counterSab);
  state.agencies.forEach((a, i) => {
    if (a.finished) counter.markFinished(i + 1);
  });
  const pool = new BetPool({
    workers: opts.workers ?? 1,
    init: { storage: handle, counter: counterSab, logLevel: 'info', logFormat: 'json' },
    ...(opts.onFsync ? { onFsync: opts.onFsync } : {}),
  });
  return {
    state,
    pool,
    handle,
    counter,
    async close() {
      await pool.close();
      ProtectedStorage.close(handle);
    },
  };
}
