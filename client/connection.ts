/**
 * The client's side of one TCP connection: framed sends that respect backpressure, and
 * `next()` handing out incoming messages strictly in arrival order.
 */
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { endAndClose, writeRespectingDrain } from '../shared/net/stream-io.js';
import { FrameDecoder, decodeMessage } from '../shared/protocol/codec.js';

const CLOSE_GRACE_MS = 1000;
import { MessageType, messageTypeName, type Message } from '../shared/protocol/messages.js';

export class ConnectionClosedError extends Error {
  constructor(detail: string) {
    super(`connection to the server closed: ${detail}`);
    this.name = 'ConnectionClosedError';
  }
}

/** The server answered with an ERROR message. */
export class ServerRefusedError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(`server error ${code}: ${message}`);
    this.name = 'ServerRefusedError';
    this.code = code;
  }
}

export class UnexpectedReplyError extends Error {
  constructor(expected: string, got: number) {
    super(`expected ${expected} from the server, got ${messageTypeName(got)}`);
    this.name = 'UnexpectedReplyError';
  }
}

type Waiter = { resolve: (m: Message) => void; reject: (e: Error) => void };

export class Connection {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #inbox: Message[] = [];
  readonly #waiters: Waiter[] = [];
  #failure: Error | null = null;
  #closing: Promise<void> | null = null;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(new ConnectionClosedError(err.message)));
    socket.on('close', () => this.#fail(new ConnectionClosedError('the server closed it')));
  }

  #onData(chunk: Buffer): void {
    try {
      for (const frame of this.#decoder.push(chunk)) this.#deliver(decodeMessage(frame));
    } catch (err) {
      this.#fail(err as Error);
      this.#socket.destroy();
    }
  }

  #deliver(msg: Message): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(msg);
    else this.#inbox.push(msg);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const w of this.#waiters.splice(0)) w.reject(this.#failure);
  }

  /** The next message; an ERROR from the server rejects with ServerRefusedError. */
  async next(): Promise<Message> {
    const msg = this.#inbox.shift() ?? (await this.#wait());
    if (msg.type === MessageType.ERROR) throw new ServerRefusedError(msg.code, msg.message);
    return msg;
  }

  /** The next message, which must be of `type`. */
  async expect<T extends Message['type']>(type: T): Promise<Extract<Message, { type: T }>> {
    const msg = await this.next();
    if (msg.type !== type) throw new UnexpectedReplyError(messageTypeName(type), msg.type);
    return msg as Extract<Message, { type: T }>;
  }

  #wait(): Promise<Message> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  async send(frame: Buffer): Promise<void> {
    if (this.#failure) throw this.#failure;
    if (!(await writeRespectingDrain(this.#socket, frame))) throw this.#failure ?? new ConnectionClosedError('closed while sending');
  }

  /** Ends the connection and waits for it to close. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= endAndClose(this.#socket, CLOSE_GRACE_MS);
    return this.#closing;
  }
}

/** One attempt; a SYN that is silently dropped fails after `timeoutMs` instead of minutes. */
function connectOnce(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Connects, retrying with exponential backoff (20 ms doubling to 2 s) until `timeoutMs`
 * has passed; `onRetry` hears each failure.
 */
export async function connectWithRetry(
  host: string,
  port: number,
  timeoutMs: number,
  onRetry: (err: Error, attempt: number, delayMs: number) => void,
  signal?: AbortSignal,
): Promise<Connection> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  for (let attempt = 1; ; attempt++) {
    try {
      return new Connection(await connectOnce(host, port, Math.min(5000, Math.max(100, deadline - Date.now()))));
    } catch (err) {
      const left = deadline - Date.now();
      if (left <= 0 || signal?.aborted) throw err;
      const wait = Math.min(delay, left);
      onRetry(err as Error, attempt, wait);
      await sleep(wait, undefined, { signal });
      delay = Math.min(delay * 2, 2000);
    }
  }
}
