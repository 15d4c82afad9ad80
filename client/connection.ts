/**
 * The client's side of one connection, over any Duplex (a TCP socket from dial.ts, or one end
 * of `stream.duplexPair()` in the tests): framed sends that respect backpressure, and
 * `next()` handing out incoming messages strictly in arrival order.
 *
 * An ERROR from the server ends the connection (the server closes after sending one): it
 * becomes the connection's failure, so a `send` blocked on backpressure and every later
 * `next` reject with its reason rather than with a bare "closed". Messages that arrived
 * before it are still handed out first.
 */
import type { Duplex } from 'node:stream';
import { CLOSE_GRACE_MS, endAndClose, writeRespectingDrain } from '../shared/net/stream-io.js';
import { FrameDecoder, decodeMessage } from '../shared/protocol/codec.js';
import { MessageType, messageTypeName, type Message } from '../shared/protocol/messages.js';
import { BadReplyError, ConnectionClosedError, ServerRefusedError, UnexpectedReplyError } from './errors.js';

type Waiter = { resolve: (m: Message) => void; reject: (e: Error) => void };

export class Connection {
  readonly #stream: Duplex;
  readonly #decoder = new FrameDecoder();
  readonly #inbox: Message[] = [];
  readonly #waiters: Waiter[] = [];
  #failure: Error | null = null;
  /**
   * Aborted on the failure: ends a send blocked on backpressure. (A promise of the failure,
   * raced by every send, kept one reaction per send until the connection failed: memory
   * growing with every batch of a long run.)
   */
  readonly #failing = new AbortController();
  #closing: Promise<void> | null = null;

  constructor(stream: Duplex) {
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('error', (err) => this.#fail(new ConnectionClosedError(err.message)));
    // After 'end' no reply can come, even if our side stays open (a Duplex may allow half-open).
    stream.on('end', () => this.#fail(new ConnectionClosedError('the server ended it')));
    stream.on('close', () => this.#fail(new ConnectionClosedError('the server closed it')));
  }

  #onData(chunk: Buffer): void {
    try {
      for (const frame of this.#decoder.push(chunk)) this.#deliver(decodeMessage(frame));
    } catch (err) {
      this.#fail(new BadReplyError((err as Error).message));
      this.#stream.destroy();
    }
  }

  #deliver(msg: Message): void {
    if (msg.type === MessageType.ERROR) {
      this.#fail(new ServerRefusedError(msg.code, msg.message));
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(msg);
    else this.#inbox.push(msg);
  }

  #fail(err: Error): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    this.#failing.abort(err);
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  /** True once the connection has failed (an ERROR, an end, a reset): sends throw, next() hands out what arrived before. */
  get failed(): boolean {
    return this.#failure !== null;
  }

  /** A message that has arrived and not been handed out yet, without waiting; undefined when there is none. */
  received(): Message | undefined {
    return this.#inbox.shift();
  }

  /** The next message; rejects with the failure (ServerRefusedError for an ERROR) once none is left. */
  next(): Promise<Message> {
    const msg = this.#inbox.shift();
    if (msg !== undefined) return Promise.resolve(msg);
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** The next message, which must be of `type`. */
  async expect<T extends Message['type']>(type: T): Promise<Extract<Message, { type: T }>> {
    const msg = await this.next();
    if (msg.type !== type) throw new UnexpectedReplyError(messageTypeName(type), msg.type);
    return msg as Extract<Message, { type: T }>;
  }

  /** Writes one frame; resolves once the stream takes more, rejects with the failure if one comes first. */
  async send(frame: Buffer): Promise<void> {
    if (this.#failure !== null) throw this.#failure;
    const written = await writeRespectingDrain(this.#stream, frame, this.#failing.signal);
    if (!written) throw this.#failure ?? new ConnectionClosedError('closed while sending');
  }

  /** Ends the connection and waits for it to close (destroying it after CLOSE_GRACE_MS). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= endAndClose(this.#stream, CLOSE_GRACE_MS);
    return this.#closing;
  }
}
