/**
 * Streams bets as BATCH frames over one Connection, keeping up to `window` batches in flight
 * and taking their acks in order. Each batch carries `first`, the index of its first bet in
 * the agency's stream of valid bets (protocol 2's idempotency key with `count`): the sender
 * counts every valid bet it reads and skips the first `from`, which the server already holds
 * (WELCOME's `next`). One sender lives as long as its connection; resuming after a reconnect
 * is a new sender on the fresh connection, fed the file again from its start.
 */
import type { Logger } from '../shared/logging/logger.js';
import { BatchBuilder, type EncodedBets } from '../shared/protocol/bet-codec.js';
import { AckStatus, MessageType, type BatchAckDTO } from '../shared/protocol/messages.js';
import type { Connection } from './connection.js';
import { OutOfOrderError } from './errors.js';

/** What the acks said, summed over the run (every connection of it). */
export interface SendTally {
  /** Bets acknowledged as held by the server (STORED or DUPLICATE). */
  sent: number;
  /** Of `sent`, bets of DUPLICATE batches (the server had them already). */
  duplicates: number;
  /** Bets written to the connection in BATCH frames, acknowledged or not (a batch sent again counts again). */
  written: number;
  batches: number;
  /** Bets of REJECTED batches (nothing of such a batch is stored; the server counts them consumed). */
  rejected: number;
}

export interface SenderOptions {
  window: number;
  maxAmount: number;
  log: Logger;
  tally: SendTally;
  /** Valid bets at the start of the stream that the server already holds: not sent. */
  from: number;
  /** Hears, per ack, where the bets the server has consumed now end (first + count). */
  onConsumed?: (end: number, rejected: number) => void;
  /** Stops sending and waiting for acks; what is in flight is left to the connection's close. */
  signal: AbortSignal;
}

interface InFlight {
  first: number;
  count: number;
}

export class AckOrderError extends Error {
  constructor(got: number, expected: number | undefined) {
    super(
      `acknowledgement for the batch from bet ${got} arrived while ${expected === undefined ? 'no batch' : `the batch from bet ${expected}`} was in flight`,
    );
    this.name = 'AckOrderError';
  }
}

export class BatchSender {
  readonly #conn: Connection;
  readonly #opts: SenderOptions;
  readonly #builder: BatchBuilder;
  readonly #inflight: InFlight[] = [];
  /** Index of the next valid bet read from the stream. */
  #index = 0;
  /** Index of the builder's first bet. */
  #first = 0;

  constructor(conn: Connection, opts: SenderOptions) {
    this.#conn = conn;
    this.#opts = opts;
    this.#builder = new BatchBuilder(opts.maxAmount);
  }

  /**
   * Sends every bet of `chunks` from index `from` on, then waits for the last ack. Returns
   * early (no error) once aborted; throws OutOfOrderError when the server says to resume elsewhere.
   */
  async sendAll(chunks: AsyncIterable<EncodedBets>): Promise<void> {
    const { signal, from } = this.#opts;
    const builder = this.#builder;
    try {
      for await (const chunk of chunks) {
        // Bets already in wire form: those below `from` are skipped, the rest copied into the
        // frame as many at a time as fit (addEncoded), one flush per full frame.
        let i = Math.min(chunk.count, Math.max(0, from - this.#index));
        this.#index += i;
        while (i < chunk.count) {
          if (builder.count === 0) this.#first = this.#index;
          const taken = builder.addEncoded(chunk, i);
          i += taken;
          this.#index += taken;
          if (builder.full || i < chunk.count) await this.#flush();
        }
      }
      if (builder.count > 0) await this.#flush();
    } catch (err) {
      if (signal.aborted) return;
      // The connection failed (an ERROR such as SHUTTING_DOWN, an end, a reset), maybe while a
      // send waited for 'drain' or the file was read: the acks that came before the failure
      // still count, or the bets they acknowledge would be stored with no apuesta_enviada line.
      if (this.#conn.failed) this.#settleArrived();
      throw err;
    }
    while (this.#inflight.length > 0 && !signal.aborted) await this.#takeAck();
  }

  async #flush(): Promise<void> {
    const count = this.#builder.count;
    const first = this.#first;
    const handedOver = !this.#conn.failed;
    const sending = this.#conn.send(this.#builder.take(first));
    // In flight as soon as the stream holds the frame, before 'drain': if the connection fails
    // while the send waits, the server may still have stored and acknowledged it.
    if (handedOver) {
      this.#opts.tally.written += count;
      this.#inflight.push({ first, count });
    }
    await sending;
    if (this.#inflight.length >= this.#opts.window) await this.#takeAck();
  }

  async #takeAck(): Promise<void> {
    this.#settle(await this.#conn.expect(MessageType.BATCH_ACK));
  }

  /** Settles the acks already received, in order, up to the first one that is not the plain answer to the oldest batch in flight. */
  #settleArrived(): void {
    while (this.#inflight.length > 0) {
      const msg = this.#conn.received();
      if (msg?.type !== MessageType.BATCH_ACK || msg.first !== this.#inflight[0]!.first || msg.status === AckStatus.OUT_OF_ORDER) return;
      this.#settle(msg);
    }
  }

  #settle(ack: BatchAckDTO): void {
    const head = this.#inflight[0];
    if (head === undefined || head.first !== ack.first) throw new AckOrderError(ack.first, head?.first);
    if (ack.status === AckStatus.OUT_OF_ORDER) throw new OutOfOrderError(ack.first, ack.next);
    this.#inflight.shift();
    const { tally, log } = this.#opts;
    tally.batches++;
    const fields = { cantidad: head.count, lote: head.first };
    if (ack.status === AckStatus.REJECTED) {
      tally.rejected += head.count;
      this.#opts.onConsumed?.(head.first + head.count, head.count);
      log.error({ action: 'apuesta_enviada', result: 'fail', ...fields, indice: ack.index, error: ack.reason });
      return;
    }
    tally.sent += head.count;
    if (ack.status === AckStatus.DUPLICATE) tally.duplicates += head.count;
    this.#opts.onConsumed?.(head.first + head.count, 0);
    log.info({
      action: 'apuesta_enviada',
      result: 'success',
      ...fields,
      ...(ack.status === AckStatus.DUPLICATE ? { duplicada: 'si' } : {}),
    });
  }
}
