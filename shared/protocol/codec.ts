/**
 * Frame codec: pure functions and an incremental decoder, no I/O.
 * Frame: `type: u8 | length: u32 BE | payload[length]`, HEADER_SIZE + length <= MAX_FRAME.
 */
import { FrameTooLargeError, MalformedMessageError, UnknownMessageTypeError } from './errors.js';
import {
  AckStatus,
  HEADER_SIZE,
  MAC_BYTES,
  MAX_PAYLOAD,
  MessageType,
  NONCE_BYTES,
  isMessageType,
  type BatchAckDTO,
  type Frame,
  type Message,
} from './messages.js';
import { PayloadReader, PayloadWriter } from './payload.js';

/**
 * Incremental decoder: `push(chunk)` returns every whole frame completed by the chunk and
 * keeps the partial rest. A bad header throws as soon as its 5 bytes are in, before any
 * payload is buffered, so a hostile length never makes us allocate.
 * Returned payloads are views into the pushed chunks: callers copy what they keep past
 * the next push only if they mutate those chunks (sockets never do).
 */
export class FrameDecoder {
  /** Bytes received but not yet returned as frames, and how many a next step needs. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  #need = HEADER_SIZE;
  #failure: Error | null = null;

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#heldBytes;
  }

  /**
   * The bad header met after the frames the last push returned; once set, every push throws
   * it. Frames before a bad header are returned first, so they can still be handled.
   */
  get failure(): Error | null {
    return this.#failure;
  }

  push(chunk: Buffer): Frame[] {
    if (this.#failure !== null) throw this.#failure;
    // Chunks are only joined once they can complete something (a header, then the frame),
    // so a peer dribbling one byte at a time costs linear, not quadratic, copying.
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes < this.#need) return [];
    const buf = this.#held.length === 1 ? chunk : Buffer.concat(this.#held, this.#heldBytes);
    const frames: Frame[] = [];
    let pos = 0;
    this.#need = HEADER_SIZE;
    try {
      while (buf.length - pos >= HEADER_SIZE) {
        const type = buf.readUInt8(pos);
        const length = buf.readUInt32BE(pos + 1);
        checkHeader(type, length);
        const end = pos + HEADER_SIZE + length;
        if (end > buf.length) {
          this.#need = end - pos;
          break;
        }
        frames.push({ type, payload: buf.subarray(pos + HEADER_SIZE, end) });
        pos = end;
      }
    } catch (err) {
      this.#failure = err as Error;
      this.#held = [];
      this.#heldBytes = 0;
      if (frames.length === 0) throw err;
      return frames;
    }
    const rest = buf.subarray(pos);
    this.#held = rest.length === 0 ? [] : [rest];
    this.#heldBytes = rest.length;
    return frames;
  }
}

export function checkHeader(type: number, length: number): void {
  if (!isMessageType(type)) throw new UnknownMessageTypeError(type);
  if (length > MAX_PAYLOAD) throw new FrameTooLargeError(length);
}

/** Wraps a payload into a frame; `payload` must already respect MAX_PAYLOAD. */
export function encodeFrame(type: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (payload.length > MAX_PAYLOAD) throw new FrameTooLargeError(payload.length);
  const w = new PayloadWriter(HEADER_SIZE + payload.length);
  return w.u8(type).u32(payload.length).bytes(payload).buf;
}

function frameWriter(type: number, payloadSize: number): PayloadWriter {
  if (payloadSize > MAX_PAYLOAD) throw new FrameTooLargeError(payloadSize);
  return new PayloadWriter(HEADER_SIZE + payloadSize).u8(type).u32(payloadSize);
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Clips a UTF-8 string to at most `max` bytes without splitting a character. */
export function clipUtf8(s: string, max: number): string {
  if (bytes(s) <= max) return s;
  let out = '';
  for (const ch of s) {
    if (bytes(out) + bytes(ch) > max) break;
    out += ch;
  }
  return out;
}

/** Encodes any message except BATCH, which is built by BatchBuilder (bet-codec.ts). */
export function encodeMessage(msg: Exclude<Message, { type: typeof MessageType.BATCH }>): Buffer {
  switch (msg.type) {
    case MessageType.HELLO:
      return frameWriter(msg.type, 6).u16(msg.version).u32(msg.agency).buf;
    case MessageType.WELCOME:
      return frameWriter(msg.type, 9)
        .u32(msg.agency)
        .u32(msg.next)
        .u8(msg.finished ? 1 : 0).buf;
    case MessageType.CHALLENGE:
      return frameWriter(msg.type, NONCE_BYTES).bytes(fixed(msg.nonce, NONCE_BYTES, 'CHALLENGE nonce')).buf;
    case MessageType.PROOF:
      return frameWriter(msg.type, MAC_BYTES).bytes(fixed(msg.mac, MAC_BYTES, 'PROOF mac')).buf;
    case MessageType.BATCH_ACK:
      return encodeAck(msg);
    case MessageType.FINISHED:
    case MessageType.WINNERS_QUERY:
      return frameWriter(msg.type, 4).u32(msg.agency).buf;
    case MessageType.FINISHED_ACK:
    case MessageType.NOT_READY:
      return frameWriter(msg.type, 8).u32(msg.finished).u32(msg.expected).buf;
    case MessageType.WINNERS:
      return encodeWinners(msg.documents, msg.last);
    case MessageType.ERROR: {
      const text = clipUtf8(msg.message, 2048);
      return frameWriter(msg.type, 4 + bytes(text))
        .u16(msg.code)
        .str16(text).buf;
    }
    case MessageType.PING:
      return frameWriter(msg.type, 0).buf;
    case MessageType.PONG:
      return frameWriter(msg.type, 9)
        .u32(msg.finished)
        .u32(msg.expected)
        .u8(msg.drawn ? 1 : 0).buf;
  }
}

function encodeAck(msg: BatchAckDTO): Buffer {
  switch (msg.status) {
    case AckStatus.REJECTED: {
      const reason = clipUtf8(msg.reason, 1024);
      return frameWriter(msg.type, 9 + bytes(reason))
        .u32(msg.first)
        .u8(msg.status)
        .u16(msg.index)
        .str16(reason).buf;
    }
    case AckStatus.OUT_OF_ORDER:
      return frameWriter(msg.type, 9).u32(msg.first).u8(msg.status).u32(msg.next).buf;
    default:
      return frameWriter(msg.type, 7).u32(msg.first).u8(msg.status).u16(msg.count).buf;
  }
}

/** A fixed-size field must be exactly that size: a short nonce would shift every byte after it. */
function fixed(b: Uint8Array, size: number, what: string): Uint8Array {
  if (b.length !== size) throw new RangeError(`${what} must be ${size} bytes, got ${b.length}`);
  return b;
}

function encodeWinners(documents: readonly string[], last: boolean): Buffer {
  const size = 3 + documents.reduce((n, d) => n + 1 + bytes(d), 0);
  const w = frameWriter(MessageType.WINNERS, size)
    .u8(last ? 1 : 0)
    .u16(documents.length);
  for (const d of documents) w.str8(d);
  return w.buf;
}

/** Splits a winners list into as many WINNERS frames as the frame limit needs (at least one). */
export function encodeWinnersFrames(documents: readonly string[]): Buffer[] {
  const frames: Buffer[] = [];
  let chunk: string[] = [];
  let size = 3;
  for (const d of documents) {
    const add = 1 + bytes(d);
    if (size + add > MAX_PAYLOAD || chunk.length === 0xffff) {
      frames.push(encodeWinners(chunk, false));
      chunk = [];
      size = 3;
    }
    chunk.push(d);
    size += add;
  }
  frames.push(encodeWinners(chunk, true));
  return frames;
}

/** Decodes one frame into its message. Throws ProtocolError subclasses on bad input. */
export function decodeMessage(frame: Frame): Message {
  checkHeader(frame.type, frame.payload.length);
  const r = new PayloadReader(frame.payload);
  const msg = decodeBody(frame.type, r);
  if (msg.type !== MessageType.BATCH) r.end(`${msg.type === MessageType.ERROR ? 'ERROR' : 'message'} payload`);
  return msg;
}

function decodeBody(type: number, r: PayloadReader): Message {
  switch (type) {
    case MessageType.HELLO:
      return { type, version: r.u16('HELLO version'), agency: r.u32('HELLO agency') };
    case MessageType.WELCOME:
      return {
        type,
        agency: r.u32('WELCOME agency'),
        next: r.u32('WELCOME next'),
        finished: flag(r.u8('WELCOME finished'), 'WELCOME finished'),
      };
    case MessageType.CHALLENGE:
      return { type, nonce: r.bytes(NONCE_BYTES, 'CHALLENGE nonce') };
    case MessageType.PROOF:
      return { type, mac: r.bytes(MAC_BYTES, 'PROOF mac') };
    case MessageType.BATCH:
      // `first` 0 is the agency's first bet: every value is valid.
      return { type, first: r.u32('BATCH first'), count: r.u16('BATCH count'), bets: r.rest() };
    case MessageType.BATCH_ACK:
      return decodeAck(r);
    case MessageType.FINISHED:
      return { type, notification: 'FIRST_NOTIFICATION', agency: r.u32('FINISHED agency') };
    case MessageType.WINNERS_QUERY:
      return { type, agency: r.u32('WINNERS_QUERY agency') };
    case MessageType.FINISHED_ACK:
    case MessageType.NOT_READY:
      return { type, finished: r.u32('finished count'), expected: r.u32('expected count') };
    case MessageType.WINNERS:
      return decodeWinners(r);
    case MessageType.ERROR:
      return { type, code: r.u16('ERROR code'), message: r.str16('ERROR message') };
    case MessageType.PING:
      return { type };
    case MessageType.PONG:
      return { type, finished: r.u32('PONG finished'), expected: r.u32('PONG expected'), drawn: r.u8('PONG drawn') === 1 };
    default:
      throw new UnknownMessageTypeError(type);
  }
}

function decodeAck(r: PayloadReader): Message {
  const type = MessageType.BATCH_ACK;
  const first = r.u32('BATCH_ACK first');
  const status = r.u8('BATCH_ACK status');
  switch (status) {
    case AckStatus.STORED:
    case AckStatus.DUPLICATE:
      return { type, first, status, count: r.u16('BATCH_ACK count') };
    case AckStatus.REJECTED:
      return { type, first, status, index: r.u16('BATCH_ACK index'), reason: r.str16('BATCH_ACK reason') };
    case AckStatus.OUT_OF_ORDER:
      return { type, first, status, next: r.u32('BATCH_ACK next') };
    default:
      throw new MalformedMessageError(`BATCH_ACK status ${status} is not 0, 1, 2 or 3`);
  }
}

/** A boolean byte: 0 or 1, anything else is a peer that does not speak this protocol. */
function flag(v: number, what: string): boolean {
  if (v > 1) throw new MalformedMessageError(`${what} is ${v}; it must be 0 or 1`);
  return v === 1;
}

function decodeWinners(r: PayloadReader): Message {
  const last = r.u8('WINNERS last');
  const count = r.u16('WINNERS count');
  const documents: string[] = [];
  for (let i = 0; i < count; i++) documents.push(r.str8(`WINNERS document ${i}`));
  return { type: MessageType.WINNERS, last: last === 1, documents };
}
