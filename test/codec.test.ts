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
  { type: MessageType.WELCOME, agency: 3, next: 123456, finished: false },
  { type: MessageType.WELCOME, agency: 0xffffffff, next: 0xffffffff, finished: true },
  { type: MessageType.CHALLENGE, nonce: Buffer.from(Array.from({ length: 32 }, (_, i) => 255 - i)) },
  { type: MessageType.PROOF, mac: Buffer.alloc(32) },
  { type: MessageType.BATCH_ACK, first: 7, status: AckStatus.STORED, count: 42 },
  { type: MessageType.BATCH_ACK, first: 0, status: AckStatus.DUPLICATE, count: 0 },
  { type: MessageType.BATCH_ACK, first: 9, status: AckStatus.REJECTED, index: 17, reason: 'fecha inválida: 2023-02-29 | ñ' },
  { type: MessageType.BATCH_ACK, first: 0xfffffffe, status: AckStatus.OUT_OF_ORDER, next: 300 },
  { type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: 4 },
  { type: MessageType.FINISHED_ACK, finished: 2, expected: 5 },
  { type: MessageType.WINNERS_QUERY, agency: 1 },
  { type: MessageType.WINNERS, last: true, documents: ['30904465', '1', '9999999999'] },
  { type: MessageType.WINNERS, last: false, documents: [] },
  { type: MessageType.NOT_READY, finished: 4, expected: 5 },
  { type: MessageType.ERROR, code: ErrorCode.AGENCY_BUSY, message: 'agency 1 is already connected' },
  { type: MessageType.ERROR, code: ErrorCode.BUSY, message: 'retry in 250 ms' },
  { type: MessageType.PING },
  { type: MessageType.PONG, finished: 5, expected: 5, drawn: true },
  { type: MessageType.PONG, finished: 0, expected: 5, drawn: false },
];

const BETS: Bet[] = [
  { agency: 2, firstName: 'Santiago Lionel', lastName: 'Lorca', document: '30904465', birthdate: '1999-03-17', number: 7574 },
  { agency: 2, firstName: 'María José', lastName: 'Núñez, "La Peña"', document: '1', birthdate: '2000-02-29', number: 0 },
  { agency: 2, firstName: 'Ana', lastName: "O'Brien", document: '9999999999', birthdate: '0001-01-01', number: 9999 },
];

function batchFrame(bets: readonly Bet[], first: number): Buffer {
  const b = new BatchBuilder(100);
  for (const bet of bets) expect(b.add(bet)).toBe(true);
  return b.take(first);
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
    expect(msg.first).toBe(77);
    expect(msg.count).toBe(BETS.length);
    expect(decodeBets(msg.bets, msg.count, 2)).toEqual({ ok: true, bets: BETS });
  });
});

const ascii = (t: string): string => Buffer.from(t, 'utf8').toString('hex');

/**
 * Protocol 2 byte by byte: each message next to its frame written out by hand from
 * docs/protocol.md (type, u32 length, payload), not produced by the encoder under test.
 */
const WIRE: Array<[string, Encodable, string]> = [
  ['HELLO v2 agency 1', { type: MessageType.HELLO, version: 2, agency: 1 }, '01 00000006 0002 00000001'],
  [
    'WELCOME agency 3, next 70000, finished',
    { type: MessageType.WELCOME, agency: 3, next: 70_000, finished: true },
    '02 00000009 00000003 00011170 01',
  ],
  [
    'WELCOME agency 4, next 0, not finished',
    { type: MessageType.WELCOME, agency: 4, next: 0, finished: false },
    '02 00000009 00000004 00000000 00',
  ],
  [
    'CHALLENGE nonce 00..1f',
    { type: MessageType.CHALLENGE, nonce: Buffer.from(Array.from({ length: 32 }, (_, i) => i)) },
    `0d 00000020 ${Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0')).join('')}`,
  ],
  ['PROOF mac aa x 32', { type: MessageType.PROOF, mac: Buffer.alloc(32, 0xaa) }, `0e 00000020 ${'aa'.repeat(32)}`],
  [
    'BATCH_ACK STORED first 150 count 150',
    { type: MessageType.BATCH_ACK, first: 150, status: AckStatus.STORED, count: 150 },
    '04 00000007 00000096 00 0096',
  ],
  [
    'BATCH_ACK DUPLICATE first 0 count 5',
    { type: MessageType.BATCH_ACK, first: 0, status: AckStatus.DUPLICATE, count: 5 },
    '04 00000007 00000000 02 0005',
  ],
  [
    'BATCH_ACK REJECTED first 10 index 2 "bad"',
    { type: MessageType.BATCH_ACK, first: 10, status: AckStatus.REJECTED, index: 2, reason: 'bad' },
    `04 0000000c 0000000a 01 0002 0003 ${ascii('bad')}`,
  ],
  [
    'BATCH_ACK OUT_OF_ORDER first 500 next 300',
    { type: MessageType.BATCH_ACK, first: 500, status: AckStatus.OUT_OF_ORDER, next: 300 },
    '04 00000009 000001f4 03 0000012c',
  ],
  ['FINISHED agency 2', { type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: 2 }, '05 00000004 00000002'],
  ['FINISHED_ACK 3 of 5', { type: MessageType.FINISHED_ACK, finished: 3, expected: 5 }, '06 00000008 00000003 00000005'],
  ['WINNERS_QUERY agency 2', { type: MessageType.WINNERS_QUERY, agency: 2 }, '07 00000004 00000002'],
  [
    'WINNERS last, "12" and "3"',
    { type: MessageType.WINNERS, last: true, documents: ['12', '3'] },
    `08 00000008 01 0002 02${ascii('12')} 01${ascii('3')}`,
  ],
  ['NOT_READY 1 of 5', { type: MessageType.NOT_READY, finished: 1, expected: 5 }, '09 00000008 00000001 00000005'],
  [
    'ERROR AUTH_FAILED "no"',
    { type: MessageType.ERROR, code: ErrorCode.AUTH_FAILED, message: 'no' },
    `0a 00000006 000d 0002 ${ascii('no')}`,
  ],
  [
    'ERROR BUSY "retry in 250 ms"',
    { type: MessageType.ERROR, code: ErrorCode.BUSY, message: 'retry in 250 ms' },
    `0a 00000013 000e 000f ${ascii('retry in 250 ms')}`,
  ],
  ['ERROR REPLACED ""', { type: MessageType.ERROR, code: ErrorCode.REPLACED, message: '' }, '0a 00000004 000f 0000'],
  ['ERROR AUTH_TIMEOUT ""', { type: MessageType.ERROR, code: ErrorCode.AUTH_TIMEOUT, message: '' }, '0a 00000004 0010 0000'],
  ['PING', { type: MessageType.PING }, '0b 00000000'],
  ['PONG 5 of 5, drawn', { type: MessageType.PONG, finished: 5, expected: 5, drawn: true }, '0c 00000009 00000005 00000005 01'],
];

describe('protocol 2 on the wire', () => {
  it('is version 2', () => {
    expect(PROTOCOL_VERSION).toBe(2);
  });

  it.each(WIRE)('%s: encodes to exactly these bytes and decodes back', (_what, msg, bytes) => {
    expect(encodeMessage(msg).toString('hex')).toBe(hex(bytes).toString('hex'));
    const frames = decodeAll(hex(bytes));
    expect(frames).toHaveLength(1);
    expect(decodeMessage(frames[0]!)).toEqual(msg);
  });

  it("a BATCH whose first bet is the agency's bet 0, byte by byte", () => {
    const bet: Bet = {
      agency: 1,
      firstName: 'Santiago Lionel',
      lastName: 'Lorca',
      document: '30904465',
      birthdate: '1999-03-17',
      number: 7574,
    };
    const expected = hex(
      `03 00000036 00000000 0001 00000001 0f${ascii('Santiago Lionel')} 05${ascii('Lorca')} 08${ascii('30904465')} 0a${ascii('1999-03-17')} 1d96`,
    );
    expect(batchFrame([bet], 0).toString('hex')).toBe(expected.toString('hex'));
    const msg = decodeMessage(decodeAll(expected)[0]!) as Extract<Message, { type: typeof MessageType.BATCH }>;
    expect([msg.first, msg.count]).toEqual([0, 1]);
    expect(decodeBets(msg.bets, msg.count, 1)).toEqual({ ok: true, bets: [bet] });
  });

  it('a BATCH with first 0xffffffff and no bets', () => {
    const frame = new BatchBuilder(10).take(0xffffffff);
    expect(frame.toString('hex')).toBe(hex('03 00000006 ffffffff 0000').toString('hex'));
    expect(decodeMessage(decodeAll(frame)[0]!)).toEqual({ type: MessageType.BATCH, first: 0xffffffff, count: 0, bets: Buffer.alloc(0) });
  });

  it('keeps the codes of protocol 1 and adds the new ones after them', () => {
    expect(ErrorCode).toMatchObject({ FRAME_TOO_LARGE: 1, SHUTTING_DOWN: 10, INTERNAL: 11, BAD_VERSION: 12 });
    expect([ErrorCode.AUTH_FAILED, ErrorCode.BUSY, ErrorCode.REPLACED, ErrorCode.AUTH_TIMEOUT]).toEqual([13, 14, 15, 16]);
    expect([MessageType.CHALLENGE, MessageType.PROOF]).toEqual([0x0d, 0x0e]);
    expect(AckStatus).toEqual({ STORED: 0, REJECTED: 1, DUPLICATE: 2, OUT_OF_ORDER: 3 });
  });

  it('refuses to encode a nonce or mac of the wrong size', () => {
    expect(() => encodeMessage({ type: MessageType.CHALLENGE, nonce: Buffer.alloc(31) })).toThrow(/32 bytes/);
    expect(() => encodeMessage({ type: MessageType.PROOF, mac: Buffer.alloc(33) })).toThrow(/32 bytes/);
  });

  it('copies a decoded nonce out of the received chunk', () => {
    const chunk = encodeMessage({ type: MessageType.CHALLENGE, nonce: Buffer.alloc(32, 7) });
    const msg = decodeMessage(decodeAll(chunk)[0]!) as Extract<Message, { type: typeof MessageType.CHALLENGE }>;
    chunk.fill(0);
    expect(msg.nonce).toEqual(Buffer.alloc(32, 7));
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
    const frame = encodeMessage({ type: MessageType.WELCOME, agency: 1, next: 2, finished: true });
    const d = new FrameDecoder();
    expect(d.push(frame.subarray(0, 3))).toEqual([]);
    expect(d.buffered).toBe(3);
    expect(d.push(frame.subarray(3, frame.length - 1))).toEqual([]);
    expect(d.buffered).toBe(frame.length - 1);
    const done = d.push(frame.subarray(frame.length - 1));
    expect(done).toHaveLength(1);
    expect(decodeMessage(done[0]!)).toEqual({ type: MessageType.WELCOME, agency: 1, next: 2, finished: true });
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
    expect(() => decodeAll(hex('0f 00 00 00 00'))).toThrow(UnknownMessageTypeError);
    expect(() => decodeMessage({ type: 0x0f, payload: Buffer.alloc(0) })).toThrow(UnknownMessageTypeError);
  });

  it.each([
    ['HELLO too short (3 of 6 bytes)', '01 00 00 00 03  00 01 00'],
    ['HELLO with a trailing byte', '01 00 00 00 07  00 01 00 00 00 01 ff'],
    ['PING with a payload', '0b 00 00 00 01  00'],
    ['BATCH_ACK with status 4', '04 00 00 00 07  00 00 00 01 04 00 05'],
    ['BATCH_ACK OUT_OF_ORDER with a u16 instead of the u32 next', '04 00 00 00 07  00 00 00 01 03 00 05'],
    ['BATCH_ACK STORED with a u32 count', '04 00 00 00 09  00 00 00 01 00 00 00 00 05'],
    ['WELCOME of protocol 1 (no finished byte)', '02 00 00 00 08  00 00 00 01 00 00 00 00'],
    ['WELCOME with finished 2', '02 00 00 00 09  00 00 00 01 00 00 00 00 02'],
    ['CHALLENGE with a 31-byte nonce', `0d 00 00 00 1f  ${'ab '.repeat(31)}`],
    ['PROOF with a 33-byte mac', `0e 00 00 00 21  ${'00 '.repeat(33)}`],
    ['PROOF with no mac', '0e 00 00 00 00'],
    ['BATCH_ACK REJECTED whose reason overruns', '04 00 00 00 0b  00 00 00 01 01 00 00 00 09 41 42'],
    ['WINNERS announcing 2 documents, holding 1', '08 00 00 00 05  01 00 02 01 37'],
    ['BATCH shorter than its first+count head', '03 00 00 00 04  00 00 00 01'],
  ])('throws MalformedMessageError on %s', (_what, bytes) => {
    const frames = decodeAll(hex(bytes));
    expect(frames).toHaveLength(1);
    expect(() => decodeMessage(frames[0]!)).toThrow(MalformedMessageError);
  });
});

describe('long texts', () => {
  it('clips a long REJECTED reason or ERROR message on a character boundary to fit one frame', () => {
    const long = 'ñ'.repeat(5000);
    const ack = encodeMessage({ type: MessageType.BATCH_ACK, first: 1, status: AckStatus.REJECTED, index: 0, reason: long });
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
