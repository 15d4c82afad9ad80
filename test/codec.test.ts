import { describe, expect, it } from 'vitest';
import type { Bet } from '../shared/domain/bet.js';
import { BatchBuilder, decodeBets } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage, encodeMessage, encodeWinnersFrames } from '../shared/protocol/codec.js';
import { FrameTooLargeError, MalformedMessageError, UnknownMessageTypeError } from '../shared/protocol/errors.js';
import {
  AckStatus,
  ErrorCode,
  HEADER_SIZE,
  MAX_FRAME,
  MessageType,
  PROTOCOL_VERSION,
  type Frame,
  type Message,
} from '../shared/protocol/messages.js';

type Encodable = Parameters<typeof encodeMessage>[0];

/** One message of every type but BATCH (built by BatchBuilder), with non-trivial values. */
const MESSAGES: Encodable[] = [
  { type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: 5 },
  { type: MessageType.HELLO, version: 0xffff, agency: 0xffffffff },
  { type: MessageType.WELCOME, agency: 3, lastSeq: 123456 },
  { type: MessageType.BATCH_ACK, seq: 7, status: AckStatus.STORED, count: 42 },
  { type: MessageType.BATCH_ACK, seq: 8, status: AckStatus.DUPLICATE, count: 0 },
  { type: MessageType.BATCH_ACK, seq: 9, status: AckStatus.REJECTED, index: 17, reason: 'fecha inválida: 2023-02-29 | ñ' },
  { type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: 4 },
  { type: MessageType.FINISHED_ACK, finished: 2, expected: 5 },
  { type: MessageType.WINNERS_QUERY, agency: 1 },
  { type: MessageType.WINNERS, last: true, documents: ['30904465', '1', '9999999999'] },
  { type: MessageType.WINNERS, last: false, documents: [] },
  { type: MessageType.NOT_READY, finished: 4, expected: 5 },
  { type: MessageType.ERROR, code: ErrorCode.AGENCY_BUSY, message: 'agency 1 is already connected' },
  { type: MessageType.PING },
  { type: MessageType.PONG, finished: 5, expected: 5, drawn: true },
  { type: MessageType.PONG, finished: 0, expected: 5, drawn: false },
];

const BETS: Bet[] = [
  { agency: 2, firstName: 'Santiago Lionel', lastName: 'Lorca', document: '30904465', birthdate: '1999-03-17', number: 7574 },
  { agency: 2, firstName: 'María José', lastName: 'Núñez, "La Peña"', document: '1', birthdate: '2000-02-29', number: 0 },
  { agency: 2, firstName: 'Ana', lastName: "O'Brien", document: '9999999999', birthdate: '0001-01-01', number: 9999 },
];

function batchFrame(bets: readonly Bet[], seq: number): Buffer {
  const b = new BatchBuilder(100);
  for (const bet of bets) expect(b.add(bet)).toBe(true);
  return b.take(seq);
}

function decodeAll(bytes: Buffer): Frame[] {
  return new FrameDecoder().push(bytes);
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A stream of several frames of varied sizes, including a zero-length payload and a batch. */
const STREAM_PARTS: Buffer[] = [...MESSAGES.map(encodeMessage), batchFrame(BETS, 1)];
const STREAM = Buffer.concat(STREAM_PARTS);

function expectSameFrames(got: Frame[]): void {
  expect(got.map((f) => Buffer.concat([Buffer.from([f.type]), u32(f.payload.length), f.payload]))).toEqual(STREAM_PARTS);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

describe('message round trip', () => {
  it.each(MESSAGES.map((m, i) => [i, m] as const))('message %i survives encode → FrameDecoder → decode', (_i, msg) => {
    const frame = encodeMessage(msg);
    expect(frame.readUInt8(0)).toBe(msg.type);
    expect(frame.readUInt32BE(1)).toBe(frame.length - HEADER_SIZE);
    const frames = decodeAll(frame);
    expect(frames).toHaveLength(1);
    expect(decodeMessage(frames[0]!)).toEqual(msg);
  });

  it('covers every message type (BATCH through BatchBuilder)', () => {
    const covered = new Set<number>([...MESSAGES.map((m) => m.type), MessageType.BATCH]);
    expect([...covered].sort((a, b) => a - b)).toEqual(Object.values(MessageType).sort((a, b) => a - b));
  });

  it('a BATCH from BatchBuilder decodes back into the same bets', () => {
    const frames = decodeAll(batchFrame(BETS, 77));
    expect(frames).toHaveLength(1);
    const msg = decodeMessage(frames[0]!) as Extract<Message, { type: typeof MessageType.BATCH }>;
    expect(msg.type).toBe(MessageType.BATCH);
    expect(msg.seq).toBe(77);
    expect(msg.count).toBe(BETS.length);
    expect(decodeBets(msg.bets, msg.count, 2)).toEqual({ ok: true, bets: BETS });
  });
});

describe('FrameDecoder stream handling', () => {
  it('yields the same frames when fed byte by byte', () => {
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let i = 0; i < STREAM.length; i++) {
      // Payloads are views of the pushed chunks: copy them since each chunk here is a fresh slice.
      for (const f of d.push(Buffer.from(STREAM.subarray(i, i + 1)))) got.push({ type: f.type, payload: Buffer.from(f.payload) });
    }
    expectSameFrames(got);
    expect(d.buffered).toBe(0);
  });

  it('yields every frame of one big chunk', () => {
    const d = new FrameDecoder();
    expectSameFrames(d.push(STREAM));
    expect(d.buffered).toBe(0);
  });

  it('handles a frame split at every possible offset', () => {
    const frame = batchFrame(BETS, 3);
    for (let cut = 0; cut <= frame.length; cut++) {
      const d = new FrameDecoder();
      const first = d.push(frame.subarray(0, cut));
      const second = d.push(frame.subarray(cut));
      const all = [...first, ...second];
      expect(all, `cut at ${cut}`).toHaveLength(1);
      expect(first, `cut at ${cut}`).toHaveLength(cut === frame.length ? 1 : 0);
      expect(Buffer.concat([Buffer.from([all[0]!.type]), u32(all[0]!.payload.length), all[0]!.payload])).toEqual(frame);
      expect(d.buffered).toBe(0);
    }
  });

  it('keeps a truncated frame buffered and counts its bytes', () => {
    const frame = encodeMessage({ type: MessageType.WELCOME, agency: 1, lastSeq: 2 });
    const d = new FrameDecoder();
    expect(d.push(frame.subarray(0, 3))).toEqual([]);
    expect(d.buffered).toBe(3);
    expect(d.push(frame.subarray(3, frame.length - 1))).toEqual([]);
    expect(d.buffered).toBe(frame.length - 1);
    const done = d.push(frame.subarray(frame.length - 1));
    expect(done).toHaveLength(1);
    expect(decodeMessage(done[0]!)).toEqual({ type: MessageType.WELCOME, agency: 1, lastSeq: 2 });
    expect(d.buffered).toBe(0);
  });

  it('accepts a frame of exactly MAX_FRAME bytes', () => {
    const header = Buffer.from([MessageType.BATCH, ...u32(MAX_FRAME - HEADER_SIZE)]);
    const frames = decodeAll(Buffer.concat([header, Buffer.alloc(MAX_FRAME - HEADER_SIZE)]));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.payload.length).toBe(MAX_FRAME - HEADER_SIZE);
  });
});

describe('FrameDecoder errors', () => {
  it('throws FrameTooLargeError as soon as an oversize header is complete, before any payload', () => {
    // BATCH claiming 8188 payload bytes: 8193 in all, one over the limit.
    const header = hex('03 00 00 1f fc');
    const d = new FrameDecoder();
    for (let i = 0; i < 4; i++) expect(d.push(header.subarray(i, i + 1))).toEqual([]);
    expect(() => d.push(header.subarray(4, 5))).toThrow(FrameTooLargeError);
  });

  it('throws FrameTooLargeError for a hostile 4 GiB length in one chunk', () => {
    expect(() => decodeAll(hex('01 ff ff ff ff 00 01'))).toThrow(FrameTooLargeError);
  });

  it('returns the frames before a bad header, then reports the failure and refuses more input', () => {
    const d = new FrameDecoder();
    const frames = d.push(Buffer.concat([encodeMessage({ type: MessageType.PING }), hex('ff 00 00 00 00')]));
    expect(frames.map((f) => f.type)).toEqual([MessageType.PING]);
    expect(d.failure).toBeInstanceOf(UnknownMessageTypeError);
    expect(() => d.push(encodeMessage({ type: MessageType.PING }))).toThrow(UnknownMessageTypeError);
  });

  it('throws UnknownMessageTypeError for an unknown type byte', () => {
    expect(() => decodeAll(hex('ff 00 00 00 00'))).toThrow(UnknownMessageTypeError);
    expect(() => decodeAll(hex('00 00 00 00 00'))).toThrow(UnknownMessageTypeError);
    expect(() => decodeMessage({ type: 0x0d, payload: Buffer.alloc(0) })).toThrow(UnknownMessageTypeError);
  });

  it.each([
    ['HELLO too short (3 of 6 bytes)', '01 00 00 00 03  00 01 00'],
    ['HELLO with a trailing byte', '01 00 00 00 07  00 01 00 00 00 01 ff'],
    ['PING with a payload', '0b 00 00 00 01  00'],
    ['BATCH_ACK with status 3', '04 00 00 00 07  00 00 00 01 03 00 05'],
    ['BATCH_ACK REJECTED whose reason overruns', '04 00 00 00 0b  00 00 00 01 01 00 00 00 09 41 42'],
    ['WINNERS announcing 2 documents, holding 1', '08 00 00 00 05  01 00 02 01 37'],
    ['BATCH shorter than its seq+count head', '03 00 00 00 04  00 00 00 01'],
    ['BATCH with seq 0', '03 00 00 00 06  00 00 00 00 00 00'],
  ])('throws MalformedMessageError on %s', (_what, bytes) => {
    const frames = decodeAll(hex(bytes));
    expect(frames).toHaveLength(1);
    expect(() => decodeMessage(frames[0]!)).toThrow(MalformedMessageError);
  });
});

describe('long texts', () => {
  it('clips a long REJECTED reason or ERROR message on a character boundary to fit one frame', () => {
    const long = 'ñ'.repeat(5000);
    const ack = encodeMessage({ type: MessageType.BATCH_ACK, seq: 1, status: AckStatus.REJECTED, index: 0, reason: long });
    const err = encodeMessage({ type: MessageType.ERROR, code: ErrorCode.INTERNAL, message: long });
    for (const [frame, field] of [
      [ack, 'reason'],
      [err, 'message'],
    ] as const) {
      expect(frame.length).toBeLessThanOrEqual(MAX_FRAME);
      const text = (decodeMessage(decodeAll(frame)[0]!) as unknown as Record<string, string>)[field]!;
      expect(text.length).toBeGreaterThan(0);
      expect(long.startsWith(text)).toBe(true);
    }
  });
});

describe('encodeWinnersFrames', () => {
  it('splits a long list into several frames within the limit, `last` only on the final one', () => {
    const docs = Array.from({ length: 3000 }, (_, i) => String(1_000_000_000 + i));
    const frames = encodeWinnersFrames(docs);
    expect(frames.length).toBeGreaterThan(1);
    const d = new FrameDecoder();
    const decoded = frames.map((f) => {
      expect(f.length).toBeLessThanOrEqual(MAX_FRAME);
      const got = d.push(f);
      expect(got).toHaveLength(1);
      return decodeMessage(got[0]!) as Extract<Message, { type: typeof MessageType.WINNERS }>;
    });
    expect(decoded.map((m) => m.last)).toEqual(frames.map((_, i) => i === frames.length - 1));
    expect(decoded.flatMap((m) => m.documents)).toEqual(docs);
  });

  it('gives one final frame with no documents for an empty list', () => {
    const frames = encodeWinnersFrames([]);
    expect(frames).toHaveLength(1);
    expect(decodeMessage(decodeAll(frames[0]!)[0]!)).toEqual({ type: MessageType.WINNERS, last: true, documents: [] });
  });
});
