/**
 * Streams bets as BATCH frames over one Connection, keeping up to `window` batches in flight
 * and taking their acks in order. One sender lives as long as its connection and holds all
 * the per-connection state (window, sequence numbers): resuming after a reconnect is a new
 * sender on the fresh connection, fed from the bet the server says it expects next.
 */
import type { Bet } from '../shared/domain/bet.js';
import type { Logger } from '../shared/logging/logger.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { AckStatus, MessageType } from '../shared/protocol/messages.js';
import type { Connection } from './connection.js';

/** What the acks said, summed over the run. */
export interface SendTally {
  /** Bets the server holds (STORED or DUPLICATE). */
  sent: number;
  /** Of `sent`, bets of DUPLICATE batches (the server had them already). */
  duplicates: number;
  /** Bets written to the connection in BATCH frames, acknowledged or not (a batch sent again counts again). */
  written: number;
  batches: number;
  /** Bets of REJECTED batches (nothing of such a batch is stored). */
  rejected: number;
}

export interface SenderOptions {
  window: number;
  maxAmount: number;
  log: Logger;
  tally: SendTally;
  /** Stops sending and waiting for acks; what is in flight is left to the connection's close. */
  signal: AbortSignal;
}

interface InFlight {
  seq: number;
  count: number;
}

export class AckOrderError extends Error {
  constructor(got: number, expected: number | undefined) {
    super(`acknowledgement for batch ${got} arrived while ${expected === undefined ? 'no batch' : `batch ${expected}`} was in flight`);
    this.name = 'AckOrderError';
  }
}

export class BatchSender {
  readonly #conn: Connection;
  readonly #opts: SenderOptions;
  readonly #builder: BatchBuilder;
  readonly #inflight: InFlight[] = [];
  #seq = 0;

  constructor(conn: Connection, opts: SenderOptions) {
    this.#conn = conn;
    this.#opts = opts;
    this.#builder = new BatchBuilder(opts.maxAmount);
  }

  /** Sends every bet of `chunks`, then waits for the last ack. Returns early (no error) once aborted. */
  async sendAll(chunks: AsyncIterable<Bet[]>): Promise<void> {
    const { signal } = this.#opts;
    const builder = this.#builder;
    try {
      for await (const chunk of chunks) {
        for (const bet of chunk) {
          if (!builder.add(bet)) {
            await this.#flush();
            builder.add(bet);
          }
          if (builder.full) await this.#flush();
        }
      }
      if (builder.count > 0) await this.#flush();
    } catch (err) {
      if (!signal.aborted) throw err;
    }
    while (this.#inflight.length > 0 && !signal.aborted) await this.#takeAck();
  }

  async #flush(): Promise<void> {
    const count = this.#builder.count;
    const seq = ++this.#seq;
    await this.#conn.send(this.#builder.take(seq));
    this.#opts.tally.written += count;
    this.#inflight.push({ seq, count });
    if (this.#inflight.length >= this.#opts.window) await this.#takeAck();
  }

  async #takeAck(): Promise<void> {
    const ack = await this.#conn.expect(MessageType.BATCH_ACK);
    const head = this.#inflight[0];
    if (head === undefined || head.seq !== ack.seq) throw new AckOrderError(ack.seq, head?.seq);
    this.#inflight.shift();
    const { tally, log } = this.#opts;
    tally.batches++;
    if (ack.status === AckStatus.REJECTED) {
      tally.rejected += head.count;
      log.error({ action: 'apuesta_enviada', result: 'fail', cantidad: head.count, lote: ack.seq, indice: ack.index, error: ack.reason });
      return;
    }
    tally.sent += head.count;
    if (ack.status === AckStatus.DUPLICATE) tally.duplicates += head.count;
    log.info({ action: 'apuesta_enviada', result: 'success', cantidad: head.count, lote: ack.seq });
  }
}
