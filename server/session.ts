/**
 * One connection, bound by its HELLO to one agency. Frames are handled strictly in order,
 * one at a time. Backpressure: while a batch is in the pool the session reads ahead at most
 * READ_AHEAD frames (together they become the next run handed to the pool), then pauses the
 * stream, so a fast client, or one that does not read its replies, is held back by TCP, not
 * by our memory. Any Duplex works (tests use duplexPair).
 */
import type { Duplex } from 'node:stream';
import { endAndClose, writeRespectingDrain } from '../shared/net/stream-io.js';
import type { Logger } from '../shared/logging/logger.js';
import { FrameDecoder, decodeMessage, encodeMessage, encodeWinnersFrames } from '../shared/protocol/codec.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import {
  AckStatus,
  ErrorCode,
  MessageType,
  PROTOCOL_VERSION,
  messageTypeName,
  type BatchAckDTO,
  type BatchDTO,
  type Frame,
  type Message,
} from '../shared/protocol/messages.js';
import type { Lottery } from './lottery.js';

const CLOSE_GRACE_MS = 1000;
const HELLO_TIMEOUT_MS = 10_000;
/** Bounds one run of batches (and the acks written at once); the client's window is 32 batches. */
const MAX_BATCHES_PER_RUN = 32;
/** Frames read ahead while one is handled; past it the stream pauses (backpressure). */
const READ_AHEAD = MAX_BATCHES_PER_RUN;

export class Session {
  readonly id: number;
  readonly #stream: Duplex;
  readonly #lottery: Lottery;
  readonly #log: Logger;
  readonly #decoder = new FrameDecoder();
  readonly #queue: Frame[] = [];
  #agency = 0;
  #busy = false;
  #helloTimer: NodeJS.Timeout;
  /** A framing error seen by the decoder; reported once the frames before it are handled. */
  #broken: unknown = null;
  #closing: Promise<void> | null = null;
  #idle: (() => void) | null = null;
  /** Resolved as close() begins: wakes a WINNERS_QUERY held for the draw. */
  readonly #closeBegun: Promise<void>;
  #beginClose: () => void = () => {};

  constructor(id: number, stream: Duplex, lottery: Lottery, log: Logger, helloTimeoutMs = HELLO_TIMEOUT_MS) {
    this.id = id;
    this.#stream = stream;
    this.#lottery = lottery;
    this.#log = log;
    this.#closeBegun = new Promise((resolve) => {
      this.#beginClose = resolve;
    });
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => void this.close());
    stream.on('error', (err) => {
      this.#log.warn({ action: 'conexion', result: 'fail', sesion: id, agencia: this.#agency, error: err.message });
      void this.close();
    });
    stream.on('close', () => void this.close());
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

  #onData(chunk: Buffer): void {
    if (this.#closing !== null || this.#broken !== null) return;
    try {
      for (const frame of this.#decoder.push(chunk)) this.#queue.push(frame);
      if (this.#decoder.failure !== null) throw this.#decoder.failure;
      if (this.#queue.length >= READ_AHEAD) this.#stream.pause();
    } catch (err) {
      // The byte stream cannot be resynchronised: read no more. Frames queued before the
      // bad one are still handled (and their batches acknowledged) before the ERROR goes out.
      this.#broken = err;
      this.#stream.pause();
    }
    void this.#drain();
  }

  /**
   * Handles queued frames in order; only one runs at a time. Consecutive BATCH frames
   * already queued go to the pool together as one run (one write, one ack write),
   * acknowledged in order.
   */
  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (let frame = this.#queue.shift(); frame !== undefined && this.#closing === null; frame = this.#queue.shift()) {
        if (this.#queue.length < READ_AHEAD && this.#stream.isPaused() && this.#broken === null) this.#stream.resume();
        const msg = decodeMessage(frame);
        if (msg.type === MessageType.BATCH && this.#agency !== 0) await this.#onBatches([msg, ...this.#takeBatches()]);
        else await this.#handle(msg);
      }
      if (this.#broken !== null && this.#closing === null) await this.#fail(this.#broken);
    } catch (err) {
      await this.#fail(err);
    } finally {
      this.#busy = false;
      this.#idle?.();
    }
  }

  /** Removes and decodes the BATCH frames at the head of the queue, up to MAX_BATCHES_PER_RUN - 1. */
  #takeBatches(): BatchDTO[] {
    const batches: BatchDTO[] = [];
    while (batches.length < MAX_BATCHES_PER_RUN - 1 && this.#queue[0]?.type === MessageType.BATCH) {
      batches.push(decodeMessage(this.#queue.shift()!) as BatchDTO);
    }
    return batches;
  }

  async #handle(msg: Message): Promise<void> {
    if (msg.type === MessageType.PING) return this.#onPing();
    if (msg.type === MessageType.HELLO) return this.#onHello(msg.version, msg.agency);
    if (this.#agency === 0)
      throw new ProtocolError(ErrorCode.NOT_BOUND, `${messageTypeName(msg.type)} before HELLO; send HELLO with the agency number first`);
    switch (msg.type) {
      case MessageType.BATCH:
        return this.#onBatches([msg]);
      case MessageType.FINISHED:
        return this.#onFinished(msg.agency);
      case MessageType.WINNERS_QUERY:
        return this.#onWinnersQuery(msg.agency);
      default:
        throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, `${messageTypeName(msg.type)} is a server message; a client may not send it`);
    }
  }

  #onPing(): Promise<void> {
    const l = this.#lottery;
    return this.#send(encodeMessage({ type: MessageType.PONG, finished: l.finished, expected: l.agencies, drawn: l.drawn }));
  }

  #onHello(version: number, agency: number): Promise<void> {
    if (version !== PROTOCOL_VERSION)
      throw new ProtocolError(
        ErrorCode.BAD_VERSION,
        `protocol version ${version} is not supported; this server speaks version ${PROTOCOL_VERSION}`,
      );
    if (this.#agency !== 0)
      throw new ProtocolError(
        ErrorCode.ALREADY_BOUND,
        `this connection is already bound to agency ${this.#agency}; open a new connection for another agency`,
      );
    const lastSeq = this.#lottery.bind(agency, this);
    this.#agency = agency;
    this.#log.info({ action: 'conexion', result: 'success', sesion: this.id, agencia: agency, ultimo_lote: lastSeq });
    return this.#send(encodeMessage({ type: MessageType.WELCOME, agency, next: lastSeq, finished: this.#lottery.hasFinished(agency) }));
  }

  async #onBatches(batches: BatchDTO[]): Promise<void> {
    const acks = await this.#lottery.storeBatches(this.#agency, batches);
    acks.forEach((ack, i) => {
      this.#logAck(batches[i]!, ack);
    });
    await this.#send(Buffer.concat(acks.map((ack) => encodeMessage(ack))));
  }

  #logAck(batch: BatchDTO, ack: BatchAckDTO): void {
    const fields = { cantidad: batch.count, agencia: this.#agency, lote: batch.first };
    if (ack.status === AckStatus.REJECTED) {
      this.#log.warn({ action: 'apuesta_recibida', result: 'fail', ...fields, indice: ack.index, error: ack.reason });
    } else {
      // A retransmission gets its own action, so that summing apuesta_recibida counts each bet once.
      this.#log.info({
        action: ack.status === AckStatus.DUPLICATE ? 'apuesta_duplicada' : 'apuesta_recibida',
        result: 'success',
        ...fields,
      });
    }
  }

  #onFinished(agency: number): Promise<void> {
    this.#checkOwn(agency, 'FINISHED');
    const mark = this.#lottery.finish(agency);
    this.#log.info({
      action: 'notificacion',
      result: 'success',
      agencia: agency,
      terminadas: mark.finished,
      esperadas: mark.expected,
      ...(mark.counted ? {} : { repetida: 'si' }),
    });
    return this.#send(encodeMessage({ type: MessageType.FINISHED_ACK, finished: mark.finished, expected: mark.expected }));
  }

  /**
   * A finished agency's query is held until the draw ends (the answer goes out the moment
   * the winners are known, no polling); frames behind it wait, and close() releases it. An
   * agency that has not sent FINISHED would wait on itself: it hears NOT_READY at once, as
   * does a held query whose draw failed (winners() starts the draw again; the client asks again).
   */
  async #onWinnersQuery(agency: number): Promise<void> {
    this.#checkOwn(agency, 'WINNERS_QUERY');
    let answer = this.#lottery.winners(agency);
    if (!answer.ready && this.#lottery.hasFinished(agency)) {
      await Promise.race([this.#lottery.drawEnded, this.#closeBegun]);
      if (this.#closing !== null) return;
      answer = this.#lottery.winners(agency);
    }
    if (!answer.ready)
      return this.#send(encodeMessage({ type: MessageType.NOT_READY, finished: answer.finished, expected: answer.expected }));
    this.#log.info({ action: 'consulta_ganadores', result: 'success', agencia: agency, cant_ganadores: answer.documents.length });
    for (const frame of encodeWinnersFrames(answer.documents)) await this.#send(frame);
  }

  #checkOwn(agency: number, what: string): void {
    if (agency !== this.#agency) {
      throw new ProtocolError(ErrorCode.WRONG_AGENCY, `${what} for agency ${agency} on a connection bound to agency ${this.#agency}`);
    }
  }

  /** Writes a frame, waiting for 'drain' when the stream asks us to; a closed stream drops it. */
  async #send(frame: Buffer): Promise<void> {
    await writeRespectingDrain(this.#stream, frame);
  }

  /** Tells the peer what went wrong (ERROR), then closes: after a protocol error we cannot resync. */
  async #fail(err: unknown): Promise<void> {
    const code = err instanceof ProtocolError ? err.code : ErrorCode.INTERNAL;
    const message = err instanceof Error ? err.message : String(err);
    const level = code === ErrorCode.INTERNAL ? 'error' : 'warn';
    this.#log[level]({ action: 'protocolo', result: 'fail', sesion: this.id, agencia: this.#agency, codigo: code, error: message });
    await this.#send(encodeMessage({ type: MessageType.ERROR, code, message }));
    // Not awaited: #fail may run inside #drain, and close() waits for #drain to finish.
    void this.close();
  }

  get closed(): boolean {
    return this.#stream.destroyed;
  }

  /** Drops the connection at once (shutdown deadline passed); a pending reply write settles on 'close'. */
  destroy(): void {
    this.#stream.destroy();
  }

  /**
   * Stops reading, waits for the frame being handled (its batch is acknowledged), then
   * ends the stream, first telling the peer with ERROR SHUTTING_DOWN when the server is
   * stopping. Idempotent; frames queued but not started are dropped unacknowledged.
   */
  close(shuttingDown = false): Promise<void> {
    if (this.#closing === null) this.#closing = this.#close(shuttingDown);
    return this.#closing;
  }

  async #close(shuttingDown: boolean): Promise<void> {
    this.#beginClose();
    clearTimeout(this.#helloTimer);
    this.#stream.pause();
    this.#queue.length = 0;
    if (this.#busy)
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
    if (this.#agency !== 0) this.#lottery.unbind(this.#agency, this);
    if (shuttingDown) {
      await this.#send(
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
