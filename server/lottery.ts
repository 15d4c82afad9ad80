/**
 * The server's shared state, owned by the main thread: which session holds each agency,
 * the last batch stored per agency, the finished counter, and the draw's result.
 * Sessions call it; it never blocks (all waiting happens in the pool).
 */
import type { Logger } from '../shared/logging/logger.js';
import { MIN_ENCODED_BET } from '../shared/protocol/bet-codec.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import { AckStatus, ErrorCode, MessageType, type BatchAckDTO, type BatchDTO } from '../shared/protocol/messages.js';
import type { BetPool } from './pool/bet-pool.js';
import type { ProtectedNotificationCounter } from './storage/notification-counter.js';

/** HELLO named an agency this server does not take, or one another connection holds. */
export class AgencyRefusedError extends ProtocolError {
  constructor(code: typeof ErrorCode.UNKNOWN_AGENCY | typeof ErrorCode.AGENCY_BUSY, message: string) {
    super(code, message);
  }
}

export type WinnersAnswer = { ready: true; documents: string[] } | { ready: false; finished: number; expected: number };

function settlement(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export class Lottery {
  readonly #pool: BetPool;
  readonly #counter: ProtectedNotificationCounter;
  readonly #log: Logger;
  readonly #owners = new Map<number, object>();
  /** Highest sequence number stored per agency: a batch at or below it is a retransmission. */
  readonly #lastSeq = new Map<number, number>();
  #winners: Map<number, string[]> | null = null;
  #drawing: Promise<void> | null = null;
  /** Resolved when the current draw ends, with a result or failed; a failure starts a fresh one. */
  #drawEnd = settlement();

  constructor(pool: BetPool, counter: ProtectedNotificationCounter, log: Logger) {
    this.#pool = pool;
    this.#counter = counter;
    this.#log = log;
  }

  get agencies(): number {
    return this.#counter.expected;
  }
  get finished(): number {
    return this.#counter.finished;
  }
  get drawn(): boolean {
    return this.#winners !== null;
  }
  /** Settles when a draw in progress ends (immediately if none). */
  get drawSettled(): Promise<void> {
    return this.#drawing ?? Promise.resolve();
  }
  /**
   * Settles when the next draw ends, with a result or failed, however long the other agencies
   * take; then ask winners() again (a failed draw is retried by the next winners() call).
   */
  get drawEnded(): Promise<void> {
    return this.#drawEnd.promise;
  }

  hasFinished(agency: number): boolean {
    return this.#counter.hasFinished(agency);
  }

  /** Binds `agency` to `owner` (a session) for as long as the session lives. */
  bind(agency: number, owner: object): number {
    if (!Number.isInteger(agency) || agency < 1 || agency > this.agencies) {
      throw new AgencyRefusedError(
        ErrorCode.UNKNOWN_AGENCY,
        `agency ${agency} is unknown: this server takes agencies 1 to ${this.agencies}`,
      );
    }
    const current = this.#owners.get(agency);
    if (current !== undefined && current !== owner) {
      throw new AgencyRefusedError(
        ErrorCode.AGENCY_BUSY,
        `agency ${agency} is already connected; close the other connection or retry later`,
      );
    }
    this.#owners.set(agency, owner);
    return this.#lastSeq.get(agency) ?? 0;
  }

  unbind(agency: number, owner: object): void {
    if (this.#owners.get(agency) === owner) this.#owners.delete(agency);
  }

  /**
   * Stores consecutive batches of one agency as one run (the pool groups the runs of one
   * event-loop turn into one task); answers one BATCH_ACK per batch, in order.
   * Retransmissions (seq at or below the last stored) are acknowledged as DUPLICATE without
   * touching the pool, so a batch is never stored twice.
   */
  async storeBatches(agency: number, batches: readonly BatchDTO[]): Promise<BatchAckDTO[]> {
    const type = MessageType.BATCH_ACK;
    const acks: Array<BatchAckDTO | null> = [];
    const fresh: Array<{ at: number; batch: BatchDTO }> = [];
    let highest = this.#lastSeq.get(agency) ?? 0;
    for (const batch of batches) {
      const { first: seq, count } = batch;
      if (seq <= highest) {
        acks.push({ type, first: seq, status: AckStatus.DUPLICATE, count });
      } else if (count * MIN_ENCODED_BET > batch.bets.length) {
        // Refused before the pool: a hostile count must not size a worker's buffers.
        const index = Math.floor(batch.bets.length / MIN_ENCODED_BET);
        acks.push({
          type,
          first: seq,
          status: AckStatus.REJECTED,
          index,
          reason: `${count} bets cannot fit in ${batch.bets.length} bytes; bet ${index} is missing`,
        });
      } else if (this.#counter.hasFinished(agency)) {
        acks.push({
          type,
          first: seq,
          status: AckStatus.REJECTED,
          index: 0,
          reason: `agency ${agency} already sent FINISHED; no more bets are taken from it`,
        });
      } else {
        fresh.push({ at: acks.length, batch });
        acks.push(null);
        highest = seq;
      }
    }
    if (fresh.length > 0) await this.#store(agency, fresh, acks);
    return acks as BatchAckDTO[];
  }

  async #store(agency: number, fresh: Array<{ at: number; batch: BatchDTO }>, acks: Array<BatchAckDTO | null>): Promise<void> {
    const results = await this.#pool.storeBatches(
      agency,
      fresh.map((f) => f.batch),
    );
    results.forEach((result, i) => {
      const { at, batch } = fresh[i]!;
      const { first: seq } = batch;
      if (!result.ok) {
        acks[at] = { type: MessageType.BATCH_ACK, first: seq, status: AckStatus.REJECTED, index: result.index, reason: result.reason };
        return;
      }
      this.#lastSeq.set(agency, Math.max(seq, this.#lastSeq.get(agency) ?? 0));
      acks[at] = { type: MessageType.BATCH_ACK, first: seq, status: AckStatus.STORED, count: result.stored };
    });
  }

  /** Records FINISHED; the call that completes the set starts the draw, exactly once. */
  finish(agency: number): { finished: number; expected: number; counted: boolean } {
    const mark = this.#counter.markFinished(agency);
    if (mark.runDraw) this.#startDraw();
    return mark;
  }

  winners(agency: number): WinnersAnswer {
    if (this.#winners === null) {
      // A draw that failed is retried when someone asks again.
      if (this.#counter.allFinished && this.#drawing === null) this.#startDraw();
      return { ready: false, finished: this.#counter.finished, expected: this.#counter.expected };
    }
    return { ready: true, documents: this.#winners.get(agency) ?? [] };
  }

  #startDraw(): void {
    this.#log.info({ action: 'sorteo', result: 'in_progress', agencias: this.agencies });
    const started = performance.now();
    this.#drawing = this.#pool.draw().then(
      (result) => {
        this.#winners = new Map(result.winners);
        const total = result.winners.reduce((n, [, docs]) => n + docs.length, 0);
        const ms = Math.round(performance.now() - started);
        this.#log.info({ action: 'sorteo', result: 'success', apuestas: result.scanned, ganadores: total, duracion_ms: ms });
        this.#drawEnd.resolve();
      },
      (err: unknown) => {
        this.#drawing = null;
        this.#log.error({ action: 'sorteo', result: 'fail', error: (err as Error).message });
        // Waiters woken by this failure must see a fresh settlement if they wait again.
        const ended = this.#drawEnd;
        this.#drawEnd = settlement();
        ended.resolve();
      },
    );
  }
}
