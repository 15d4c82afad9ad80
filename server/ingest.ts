/**
 * Batch admission (main thread): decides, per batch of a run, whether it is a retransmission
 * (DUPLICATE, not stored again), refused before the pool (REJECTED), or fresh (stored by the
 * pool), and answers one BATCH_ACK per batch, in order. It never blocks: the pool does the work.
 *
 * Invariant: a run is judged exactly as if its batches came one at a time. A `seq` at or below
 * the agency's last STORED `seq` is DUPLICATE; a batch whose verdict hangs on an earlier fresh
 * batch of the same run (its `seq` is not above that one's) waits for that batch's result, so
 * a copy of a batch the pool refused is never acknowledged DUPLICATE (a client reads DUPLICATE
 * as stored).
 */
import { MIN_ENCODED_BET } from '../shared/protocol/bet-codec.js';
import { AckStatus, MessageType, type BatchAckDTO, type BatchDTO } from '../shared/protocol/messages.js';
import type { BetPool } from './pool/bet-pool.js';
import type { StoreBatchResult } from './pool/tasks.js';
import type { ProtectedNotificationCounter } from './sync/notification-counter.js';

/** What admission needs of the pool and of the finished counter. */
export type BatchStore = Pick<BetPool, 'storeBatches'>;
export type FinishedFlags = Pick<ProtectedNotificationCounter, 'hasFinished'>;

/** A batch judged without the pool, or one the pool must store. */
type Screened = { readonly ack: BatchAckDTO } | { readonly fresh: BatchDTO };

export class Ingest {
  readonly #store: BatchStore;
  readonly #finished: FinishedFlags;
  /** Highest sequence number stored per agency: a batch at or below it is a retransmission. */
  readonly #lastSeq = new Map<number, number>();

  constructor(store: BatchStore, finished: FinishedFlags) {
    this.#store = store;
    this.#finished = finished;
  }

  /** The highest `seq` stored for `agency` (0: none), as WELCOME reports it. */
  lastStored(agency: number): number {
    return this.#lastSeq.get(agency) ?? 0;
  }

  /**
   * Stores the fresh batches of one agency's run (the pool groups the runs of one event-loop
   * turn into one task) and returns one BATCH_ACK per batch, in order. Usually one pool call;
   * one more per batch whose verdict hangs on an earlier batch of the run.
   */
  async admit(agency: number, batches: readonly BatchDTO[]): Promise<BatchAckDTO[]> {
    const acks: BatchAckDTO[] = [];
    while (acks.length < batches.length) {
      const screened = this.#screen(agency, batches.slice(acks.length));
      const fresh = screened.flatMap((s) => ('fresh' in s ? [s.fresh] : []));
      const results = fresh.length > 0 ? await this.#store.storeBatches(agency, fresh) : [];
      let next = 0;
      for (const s of screened) acks.push('ack' in s ? s.ack : this.#record(agency, s.fresh, results[next++]!));
    }
    return acks;
  }

  /** Judges the longest prefix of `batches` whose verdicts do not hang on a pool result. */
  #screen(agency: number, batches: readonly BatchDTO[]): Screened[] {
    const stored = this.lastStored(agency);
    let highestFresh = stored;
    const screened: Screened[] = [];
    for (const batch of batches) {
      if (batch.seq <= stored) screened.push({ ack: duplicate(batch) });
      else if (batch.seq <= highestFresh) break;
      else {
        const refusal = this.#refusal(agency, batch);
        if (refusal === null) highestFresh = batch.seq;
        screened.push(refusal === null ? { fresh: batch } : { ack: refusal });
      }
    }
    return screened;
  }

  /** A REJECTED ack for a batch refused before the pool, or null when the pool may take it. */
  #refusal(agency: number, batch: BatchDTO): BatchAckDTO | null {
    const { seq, count, bets } = batch;
    if (count * MIN_ENCODED_BET > bets.length) {
      // Refused before the pool: a hostile count must not size a worker's buffers.
      const index = Math.floor(bets.length / MIN_ENCODED_BET);
      return rejected(seq, index, `${count} bets cannot fit in ${bets.length} bytes; bet ${index} is missing`);
    }
    if (this.#finished.hasFinished(agency)) {
      return rejected(seq, 0, `agency ${agency} already sent FINISHED; no more bets are taken from it`);
    }
    return null;
  }

  #record(agency: number, batch: BatchDTO, result: StoreBatchResult): BatchAckDTO {
    if (!result.ok) return rejected(batch.seq, result.index, result.reason);
    this.#lastSeq.set(agency, Math.max(batch.seq, this.lastStored(agency)));
    return { type: MessageType.BATCH_ACK, seq: batch.seq, status: AckStatus.STORED, count: result.stored };
  }
}

function duplicate({ seq, count }: BatchDTO): BatchAckDTO {
  return { type: MessageType.BATCH_ACK, seq, status: AckStatus.DUPLICATE, count };
}

function rejected(seq: number, index: number, reason: string): BatchAckDTO {
  return { type: MessageType.BATCH_ACK, seq, status: AckStatus.REJECTED, index, reason };
}
