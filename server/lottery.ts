/**
 * The server's shared state, owned by the main thread: which session holds each agency,
 * the last batch stored per agency, the finished counter, and the draw's result.
 * Sessions call it; it never blocks (all waiting happens in the pool).
 */
import type { Logger } from '../shared/logging/logger.js';
import { AckStatus, ErrorCode, MessageType, type BatchAckDTO, type BatchDTO } from '../shared/protocol/messages.js';
import type { BetPool } from './pool/bet-pool.js';
import type { ProtectedNotificationCounter } from './storage/notification-counter.js';

export class AgencyRefusedError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'AgencyRefusedError';
    this.code = code;
  }
}

export type WinnersAnswer =
  | { ready: true; documents: string[] }
  | { ready: false; finished: number; expected: number };

export class Lottery {
  readonly #pool: BetPool;
  readonly #counter: ProtectedNotificationCounter;
  readonly #log: Logger;
  readonly #owners = new Map<number, object>();
  /** Highest sequence number stored per agency: a batch at or below it is a retransmission. */
  readonly #lastSeq = new Map<number, number>();
  #winners: Map<number, string[]> | null = null;
  #drawing: Promise<void> | null = null;

  constructor(pool: BetPool, counter: ProtectedNotificationCounter, log: Logger) {
    this.#pool = pool;
    this.#counter = counter;
    this.#log = log;
  }

  get agencies(): number { return this.#counter.expected; }
  get finished(): number { return this.#counter.finished; }
  get drawn(): boolean { return this.#winners !== null; }
  /** Settles when a draw in progress ends (immediately if none). */
  get drawSettled(): Promise<void> { return this.#drawing ?? Promise.resolve(); }

  /** Binds `agency` to `owner` (a session) for as long as the session lives. */
  bind(agency: number, owner: object): number {
    if (!Number.isInteger(agency) || agency < 1 || agency > this.agencies) {
      throw new AgencyRefusedError(ErrorCode.UNKNOWN_AGENCY, `agency ${agency} is unknown: this server takes agencies 1 to ${this.agencies}`);
    }
    const current = this.#owners.get(agency);
    if (current !== undefined && current !== owner) {
      throw new AgencyRefusedError(ErrorCode.AGENCY_BUSY, `agency ${agency} is already connected; close the other connection or retry later`);
    }
    this.#owners.set(agency, owner);
    return this.#lastSeq.get(agency) ?? 0;
  }

  unbind(agency: number, owner: object): void {
    if (this.#owners.get(agency) === owner) this.#owners.delete(agency);
  }

  /** Stores one batch on the pool; answers with the BATCH_ACK to send. */
  async storeBatch(agency: number, batch: BatchDTO): Promise<BatchAckDTO> {
    const type = MessageType.BATCH_ACK;
    const { seq, count } = batch;
    if (this.#counter.hasFinished(agency)) {
      return { type, seq, status: AckStatus.REJECTED, index: 0, reason: `agency ${agency} already sent FINISHED; no more bets are taken from it` };
    }
    const last = this.#lastSeq.get(agency) ?? 0;
    if (seq <= last) return { type, seq, status: AckStatus.DUPLICATE, count };
    // The pool takes ownership of the bytes (transferred), so copy them out of the socket chunk.
    const result = await this.#pool.storeBatch({ agency, seq, count, bets: new Uint8Array(batch.bets) });
    if (!result.ok) return { type, seq, status: AckStatus.REJECTED, index: result.index, reason: result.reason };
    this.#lastSeq.set(agency, Math.max(seq, this.#lastSeq.get(agency) ?? 0));
    return { type, seq, status: AckStatus.STORED, count: result.stored };
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
      },
      (err: unknown) => {
        this.#drawing = null;
        this.#log.error({ action: 'sorteo', result: 'fail', error: (err as Error).message });
      },
    );
  }
}
