/**
 * One connection, bound by its HELLO to one agency. The session owns the stream, the frame
 * decoder, the order of frames, backpressure and close; what each message means lives in
 * server/handlers/, one file per client message, reached through one `switch` (#dispatch).
 *
 * Frames are handled strictly in order, one at a time. Backpressure: while a run is in the
 * pool the session reads ahead at most BATCH_WINDOW frames (together they become the next
 * run), then pauses the stream, so a fast client, or one that does not read its replies, is
 * held back by TCP, not by our memory. Any Duplex works (tests use duplexPair).
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../shared/logging/logger.js';
import { CLOSE_GRACE_MS, endAndClose, writeRespectingDrain } from '../shared/net/stream-io.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import {
  BATCH_WINDOW,
  ErrorCode,
  MessageType,
  messageTypeName,
  type BatchDTO,
  type Frame,
  type Message,
} from '../shared/protocol/messages.js';
import { deferred } from '../shared/util/async.js';
import { handleBatches } from './handlers/batch.js';
import type { Services, SessionContext } from './handlers/context.js';
import { handleFinished } from './handlers/finished.js';
import { handleHello } from './handlers/hello.js';
import { handlePing } from './handlers/ping.js';
import { handleProof } from './handlers/proof.js';
import { handleWinnersQuery } from './handlers/winners-query.js';

const HELLO_TIMEOUT_MS = 10_000;

export class Session {
  readonly id: number;
  readonly #stream: Duplex;
  readonly #log: Logger;
  readonly #ctx: SessionContext;
  readonly #decoder = new FrameDecoder();
  readonly #queue: Frame[] = [];
  /** When each queued frame was read off the stream (performance.now()), for the ack latency. */
  readonly #arrivals = new WeakMap<Frame, number>();
  #receivedAt = 0;
  /** Why the connection ends, for the desconexion line: the first cause seen wins. */
  #endCause: { ok: boolean; motivo: string } | null = null;
  #agency = 0;
  #busy = false;
  readonly #helloTimer: NodeJS.Timeout;
  /** A framing error seen by the decoder; reported once the frames before it are handled. */
  #broken: unknown = null;
  #closing: Promise<void> | null = null;
  /** Resolved when #drain stops running; close() waits for it. */
  #idle = deferred();
  /** Resolved as close() begins: wakes a WINNERS_QUERY held for the draw. */
  readonly #closeBegun = deferred();

  constructor(id: number, stream: Duplex, services: Services, log: Logger, helloTimeoutMs = HELLO_TIMEOUT_MS) {
    this.id = id;
    this.#stream = stream;
    this.#log = log;
    this.#ctx = this.#context(services);
    services.metrics?.connectionOpened();
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => void this.#end(true, 'peer closed'));
    stream.on('error', (err) => {
      this.#log.warn({ action: 'conexion', result: 'fail', sesion: id, agencia: this.#agency, error: err.message });
      void this.#end(false, `connection error: ${err.message}`);
    });
    stream.on('close', () => void this.#end(false, 'connection closed without an end'));
    // A connection that never says HELLO (or only PINGs) must not hold a slot forever.
    this.#helloTimer = setTimeout(() => {
      if (this.#agency === 0)
        void this.#fail(new ProtocolError(ErrorCode.NOT_BOUND, `no HELLO within ${helloTimeoutMs} ms; send HELLO right after connecting`));
    }, helloTimeoutMs);
    this.#helloTimer.unref();
  }

  get agency(): number {
    return this.#agency;
  }

  get closed(): boolean {
    return this.#stream.destroyed;
  }

  #context({ ingest, draw, registry, metrics }: Services): SessionContext {
    const session = this;
    const ctx: SessionContext = {
      id: this.id,
      ingest,
      draw,
      registry,
      metrics,
      log: this.#log,
      challenge: null,
      closing: this.#closeBegun.promise,
      get agency() {
        return session.#agency;
      },
      get isClosing() {
        return session.#closing !== null;
      },
      get receivedAt() {
        return session.#receivedAt;
      },
      bindAgency(agency: number) {
        registry.bind(agency, ctx);
        if (session.#agency === 0) metrics?.connectionBound();
        session.#agency = agency;
      },
      send: async (frame: Buffer) => {
        await writeRespectingDrain(this.#stream, frame);
      },
    };
    return ctx;
  }

  #onData(chunk: Buffer): void {
    if (this.#closing !== null || this.#broken !== null) return;
    try {
      const at = performance.now();
      for (const frame of this.#decoder.push(chunk)) {
        this.#queue.push(frame);
        this.#arrivals.set(frame, at);
      }
      if (this.#decoder.failure !== null) throw this.#decoder.failure;
      if (this.#queue.length >= BATCH_WINDOW) this.#stream.pause();
    } catch (err) {
      // The byte stream cannot be resynchronised: read no more. Frames queued before the
      // bad one are still handled (and their batches acknowledged) before the ERROR goes out.
      this.#broken = err;
      this.#stream.pause();
    }
    void this.#drain();
  }

  /** Handles queued frames in order; only one runs at a time. */
  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    this.#idle = deferred();
    try {
      for (let frame = this.#queue.shift(); frame !== undefined && this.#closing === null; frame = this.#queue.shift()) {
        if (this.#queue.length < BATCH_WINDOW && this.#stream.isPaused() && this.#broken === null) this.#stream.resume();
        this.#receivedAt = this.#arrivals.get(frame) ?? performance.now();
        await this.#dispatch(decodeMessage(frame));
      }
      if (this.#broken !== null && this.#closing === null) await this.#fail(this.#broken);
    } catch (err) {
      await this.#fail(err);
    } finally {
      this.#busy = false;
      this.#idle.resolve();
    }
  }

  /** The one place that maps a client message to its handler. Only PING, HELLO and PROOF may come unbound. */
  #dispatch(msg: Message): Promise<void> {
    const ctx = this.#ctx;
    if (this.#agency === 0 && msg.type !== MessageType.PING && msg.type !== MessageType.HELLO && msg.type !== MessageType.PROOF)
      throw new ProtocolError(
        ErrorCode.NOT_BOUND,
        `${messageTypeName(msg.type)} before the connection is bound; send HELLO, then the PROOF answering its CHALLENGE`,
      );
    switch (msg.type) {
      case MessageType.PING:
        return handlePing(ctx);
      case MessageType.HELLO:
        return handleHello(ctx, msg);
      case MessageType.PROOF:
        return handleProof(ctx, msg);
      case MessageType.BATCH:
        // The BATCH frames queued right behind it travel with it as one run (one pool task, one ack write).
        return handleBatches(ctx, [msg, ...this.#takeBatches()]);
      case MessageType.FINISHED:
        return handleFinished(ctx, msg);
      case MessageType.WINNERS_QUERY:
        return handleWinnersQuery(ctx, msg);
      default:
        throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `${messageTypeName(msg.type)} is a server message; a client may not send it`);
    }
  }

  /** Removes and decodes the BATCH frames at the head of the queue, up to BATCH_WINDOW - 1. */
  #takeBatches(): BatchDTO[] {
    const batches: BatchDTO[] = [];
    while (batches.length < BATCH_WINDOW - 1 && this.#queue[0]?.type === MessageType.BATCH) {
      batches.push(decodeMessage(this.#queue.shift()!) as BatchDTO);
    }
    return batches;
  }

  /** Tells the peer what went wrong (ERROR), then closes: after a protocol error we cannot resync. */
  async #fail(err: unknown): Promise<void> {
    const code = err instanceof ProtocolError ? err.code : ErrorCode.INTERNAL;
    const message = err instanceof Error ? err.message : String(err);
    const level = code === ErrorCode.INTERNAL ? 'error' : 'warn';
    this.#log[level]({ action: 'protocolo', result: 'fail', sesion: this.id, agencia: this.#agency, codigo: code, error: message });
    this.#endCause ??= { ok: false, motivo: `protocol error ${code}: ${message}` };
    await this.#ctx.send(encodeMessage({ type: MessageType.ERROR, code, message }));
    // Not awaited: #fail may run inside #drain, and close() waits for #drain to finish.
    void this.close();
  }

  /** Drops the connection at once (shutdown deadline passed); a pending reply write settles on 'close'. */
  destroy(): void {
    this.#endCause ??= { ok: false, motivo: 'destroyed at the shutdown deadline' };
    this.#stream.destroy();
  }

  /** The stream ended (`ok`: cleanly, by the peer) or failed: the session closes, saying why. */
  #end(ok: boolean, motivo: string): Promise<void> {
    this.#endCause ??= { ok, motivo };
    return this.close();
  }

  /**
   * Stops reading, waits for the frame being handled (its batch is acknowledged), then
   * ends the stream, first telling the peer with ERROR SHUTTING_DOWN when the server is
   * stopping. Idempotent; frames queued but not started are dropped unacknowledged.
   */
  close(shuttingDown = false): Promise<void> {
    if (this.#closing === null) {
      this.#endCause ??= { ok: true, motivo: shuttingDown ? 'server shutting down' : 'closed by the server' };
      this.#closing = this.#close(shuttingDown).finally(() => this.#closed());
    }
    return this.#closing;
  }

  /**
   * One line per connection once it is closed, with its cause. A clean end of a connection
   * never bound to an agency (a health probe) is DEBUG: the health check makes one every 2 s.
   */
  #closed(): void {
    const bound = this.#agency !== 0;
    this.#ctx.metrics?.connectionClosed(bound);
    const { ok, motivo } = this.#endCause!;
    const level = !ok ? 'warn' : bound ? 'info' : 'debug';
    this.#log[level]({ action: 'desconexion', result: ok ? 'success' : 'fail', sesion: this.id, agencia: this.#agency, motivo });
  }

  async #close(shuttingDown: boolean): Promise<void> {
    this.#closeBegun.resolve();
    clearTimeout(this.#helloTimer);
    this.#stream.pause();
    this.#queue.length = 0;
    if (this.#busy) await this.#idle.promise;
    if (this.#agency !== 0) this.#ctx.registry.unbind(this.#agency, this.#ctx);
    if (shuttingDown) {
      await this.#ctx.send(
        encodeMessage({
          type: MessageType.ERROR,
          code: ErrorCode.SHUTTING_DOWN,
          message: 'the server is shutting down; batches not acknowledged were not stored',
        }),
      );
    }
    await endAndClose(this.#stream, CLOSE_GRACE_MS);
  }
}
