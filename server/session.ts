/**
 * One connection, bound to one agency once it proves the agency's key (HELLO → CHALLENGE,
 * PROOF → WELCOME). The session owns the stream, the frame queue, the order of frames,
 * backpressure, the connection's deadlines and close; what each message means lives in
 * server/handlers/, one file per client message, reached through one `switch` (#dispatch).
 *
 * Frames are handled strictly in order, one at a time. Memory per connection is bounded
 * whatever the peer does: at most BATCH_WINDOW frames are decoded ahead (FrameQueue), and the
 * stream is paused while bytes of a read wait undecoded or the window is full, so a fast
 * client, or one that does not read its replies, is held back by TCP, not by our memory;
 * replies are written one at a time, each waiting for 'drain' (SessionOutput, which also says
 * the last words).
 *
 * Deadlines (SessionDeadlines): a connection must prove a key within `authTimeoutMs` of its accept (ERROR
 * AUTH_TIMEOUT); an authenticated one that sends nothing for `idleTimeoutMs` while nothing of
 * it is being worked on (no batch in the pool, no query held for the draw) is closed with
 * ERROR BUSY; a reply the peer does not take within CLOSE_GRACE_MS once the session closes
 * gets the connection destroyed. Any Duplex works (tests use duplexPair).
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../shared/logging/logger.js';
import { withRetryHint } from '../shared/net/retry-hint.js';
import { decodeMessage } from '../shared/protocol/codec.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import { BATCH_WINDOW, ErrorCode, MessageType, messageTypeName, type BatchDTO, type Message } from '../shared/protocol/messages.js';
import { deferred } from '../shared/util/async.js';
import { handleBatches } from './handlers/batch.js';
import type { Services, SessionContext } from './handlers/context.js';
import { handleFinished } from './handlers/finished.js';
import { handleHello } from './handlers/hello.js';
import { handlePing } from './handlers/ping.js';
import { handleProof } from './handlers/proof.js';
import { handleWinnersQuery } from './handlers/winners-query.js';
import type { Ticket } from './limits/connection-budget.js';
import { FrameQueue } from './limits/frame-queue.js';
import { Activity, SessionDeadlines } from './session-deadlines.js';
import { REPLACED, SHUTDOWN, SessionOutput, type Farewell } from './session-output.js';

export interface SessionOptions {
  /** The connection's place in the budget: promoted on a valid proof, released on close. */
  readonly ticket?: Ticket;
  /** `origen` in the logs and the key of the per-source limits. */
  readonly source?: string;
  readonly authTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
}

const DEFAULTS = { authTimeoutMs: 5000, idleTimeoutMs: 60_000 };

export class Session {
  readonly id: number;
  readonly #stream: Duplex;
  readonly #log: Logger;
  readonly #ctx: SessionContext;
  readonly #opts: { source: string; authTimeoutMs: number; idleTimeoutMs: number };
  readonly #ticket: Ticket | undefined;
  readonly #queue = new FrameQueue(BATCH_WINDOW);
  readonly #output: SessionOutput;
  #agency = 0;
  #busy = false;
  readonly #deadlines: SessionDeadlines;
  #closing: Promise<void> | null = null;
  /** When the frame being handled was read off the stream (performance.now()), for the ack latency. */
  #receivedAt = 0;
  /** Why the connection ends, for the desconexion line: the first cause seen wins. */
  #endCause: { ok: boolean; motivo: string } | null = null;
  /** Resolved when #drain stops running; close() waits for it. */
  #idle = deferred();
  /** Resolved as close() begins: wakes a WINNERS_QUERY held for the draw and a held proof. */
  readonly #closeBegun = deferred();

  constructor(id: number, stream: Duplex, services: Services, log: Logger, opts: SessionOptions = {}) {
    this.id = id;
    this.#stream = stream;
    this.#output = new SessionOutput(stream);
    this.#log = log;
    this.#ticket = opts.ticket;
    this.#opts = {
      source: opts.source ?? 'local',
      authTimeoutMs: opts.authTimeoutMs ?? DEFAULTS.authTimeoutMs,
      idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
    };
    this.#ctx = this.#context(services);
    services.metrics?.connectionOpened();
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => void this.#end(true, 'peer closed'));
    stream.on('error', (err) => {
      this.#log.warn({
        action: 'conexion',
        result: 'fail',
        sesion: id,
        agencia: this.#agency,
        origen: this.#opts.source,
        error: err.message,
      });
      void this.#end(false, `connection error: ${err.message}`);
    });
    stream.on('close', () => void this.#end(false, 'connection closed without an end'));
    const { authTimeoutMs: authMs, idleTimeoutMs: idleMs } = this.#opts;
    this.#deadlines = new SessionDeadlines({ authMs, idleMs }, (err) => this.#fail(err));
  }

  get agency(): number {
    return this.#agency;
  }

  get closed(): boolean {
    return this.#stream.destroyed;
  }

  #context(services: Services): SessionContext {
    const session = this;
    const ctx: SessionContext = {
      ...services,
      id: this.id,
      source: this.#opts.source,
      log: this.#log,
      challenge: null,
      epoch: 0,
      finished: false,
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
      stopAuthDeadline: () => this.#deadlines.stopAuth(),
      bindAgency: (agency: number) => this.#bind(agency),
      replaced: () => void this.close(REPLACED),
      send: (frame: Buffer) => this.#output.send(frame),
    };
    return ctx;
  }

  #bind(agency: number): void {
    const refusal = this.#ticket?.promote() ?? null;
    if (refusal !== null) throw new ProtocolError(ErrorCode.BUSY, withRetryHint(`server busy: ${refusal.reason}`, refusal.retryMs));
    this.#deadlines.stopAuth();
    this.#ctx.registry.bind(agency, this.#ctx);
    if (this.#agency === 0) this.#ctx.metrics?.connectionBound();
    this.#agency = agency;
    this.#armIdle();
  }

  #onData(chunk: Buffer): void {
    if (this.#closing !== null) return;
    this.#queue.push(chunk, performance.now());
    this.#armIdle();
    // Read nothing more while bytes of this read wait undecoded or the window is full.
    if (this.#queue.pendingBytes > 0 || this.#queue.length >= BATCH_WINDOW || this.#queue.failure !== null) this.#stream.pause();
    void this.#drain();
  }

  /** Handles queued frames in order; only one runs at a time. */
  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    this.#idle = deferred();
    try {
      for (let frame = this.#queue.shift(); frame !== undefined && this.#closing === null; frame = this.#queue.shift()) {
        this.#resumeIfRoom();
        this.#receivedAt = this.#queue.shiftedAt;
        await this.#dispatch(decodeMessage(frame));
      }
      // A run may have taken every frame (#takeBatches) with the stream still paused: with
      // nothing queued, no later shift would resume it, and the peer's next bytes would wait
      // for the idle deadline.
      this.#resumeIfRoom();
      // A bad header: the byte stream cannot be resynchronised; the frames before it were handled.
      if (this.#queue.failure !== null) this.#fail(this.#queue.failure);
    } catch (err) {
      this.#fail(err);
    } finally {
      this.#busy = false;
      this.#idle.resolve();
    }
  }

  /** Reads again if the queue has room; never once closing (close() stops reading for good). */
  #resumeIfRoom(): void {
    const q = this.#queue;
    if (this.#closing !== null || !this.#stream.isPaused()) return;
    if (q.pendingBytes === 0 && q.length < BATCH_WINDOW && q.failure === null) this.#stream.resume();
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

  /**
   * Removes and decodes the BATCH frames at the head of the queue, up to BATCH_WINDOW - 1, and
   * reads ahead again if that made room: the next run then gathers while this one is stored.
   */
  #takeBatches(): BatchDTO[] {
    const batches: BatchDTO[] = [];
    while (batches.length < BATCH_WINDOW - 1 && this.#queue.peek()?.type === MessageType.BATCH) {
      batches.push(decodeMessage(this.#queue.shift()!) as BatchDTO);
    }
    this.#resumeIfRoom();
    return batches;
  }

  /**
   * The idle deadline of an authenticated session, pushed back by every read. When it passes
   * while the session works for the peer (a batch in the pool, a query held for the draw) it
   * is armed again; while the peer leaves a reply untaken, or sends nothing, it closes.
   */
  #armIdle(): void {
    if (this.#agency === 0 || this.#closing !== null) return;
    this.#deadlines.armIdle(() => (this.#output.blocked ? Activity.BLOCKED : this.#busy ? Activity.WORKING : Activity.SILENT));
  }

  /** Logs what went wrong and closes with it as the ERROR: after a protocol error we cannot resync. */
  #fail(err: unknown): void {
    if (this.#closing !== null) return;
    const code = err instanceof ProtocolError ? err.code : ErrorCode.INTERNAL;
    const message = err instanceof Error ? err.message : String(err);
    const level = code === ErrorCode.INTERNAL ? 'error' : 'warn';
    const fields = { sesion: this.id, agencia: this.#agency || this.#ctx.challenge?.agency || 0, origen: this.#opts.source };
    this.#log[level]({ action: 'protocolo', result: 'fail', ...fields, codigo: code, error: message });
    this.#endCause ??= { ok: false, motivo: `protocol error ${code}: ${message}` };
    // Not awaited: #fail may run inside #drain, and close() waits for #drain to finish.
    void this.close({ code, message });
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
   * ends the stream, first saying why with an ERROR: SHUTTING_DOWN when the server is
   * stopping. Idempotent; frames queued but not started are dropped unacknowledged.
   */
  close(how: boolean | Farewell = null): Promise<void> {
    if (this.#closing === null) {
      const farewell = how === true ? SHUTDOWN : how === false ? null : how;
      this.#endCause ??= { ok: true, motivo: farewell?.motivo ?? 'closed by the server' };
      this.#closing = this.#close(farewell).finally(() => this.#closed());
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
    const fields = { sesion: this.id, agencia: this.#agency, origen: this.#opts.source, motivo };
    this.#log[level]({ action: 'desconexion', result: ok ? 'success' : 'fail', ...fields });
  }

  async #close(farewell: Farewell): Promise<void> {
    this.#closeBegun.resolve();
    this.#deadlines.clear();
    this.#stream.pause();
    this.#queue.clear();
    await this.#output.awaitHandling(() => (this.#busy ? this.#idle.promise : null));
    if (this.#agency !== 0) this.#ctx.registry.unbind(this.#agency, this.#ctx);
    this.#ticket?.release();
    await this.#output.farewell(farewell);
  }
}
