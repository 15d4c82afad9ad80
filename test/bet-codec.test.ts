import { describe, expect, it } from 'vitest';
import type { Bet } from '../shared/domain/bet.js';
import { BatchBuilder, MAX_ENCODED_BET, decodeBets, writeBet } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage } from '../shared/protocol/codec.js';
import { HEADER_SIZE, MAX_FRAME, MessageType, type BatchDTO } from '../shared/protocol/messages.js';

const AGENCY = 3;
const BATCH_HEAD = 6;

function bet(i: number, over: Partial<Bet> = {}): Bet {
  return {
    agency: AGENCY,
    firstName: `Nombre${i}`,
    lastName: `Apellido${i}`,
    document: String(20_000_000 + i),
    birthdate: '1990-05-17',
    number: i % 10_000,
    ...over,
  };
}

/** Bytes of one bet on the wire, from docs/protocol.md: agency u32, four str8 fields (u8 length + UTF-8), number u16. */
function encodedBetSize(b: Bet): number {
  const str8 = (text: string): number => 1 + Buffer.byteLength(text, 'utf8');
  return 4 + str8(b.firstName) + str8(b.lastName) + str8(b.document) + str8(b.birthdate) + 2;
}

/** Parses a frame the way the server does: FrameDecoder, then decodeMessage. */
function parseBatch(frame: Buffer): BatchDTO {
  expect(frame.length).toBeLessThanOrEqual(MAX_FRAME);
  const frames = new FrameDecoder().push(frame);
  expect(frames).toHaveLength(1);
  const msg = decodeMessage(frames[0]!);
  expect(msg.type).toBe(MessageType.BATCH);
  return msg as BatchDTO;
}

/** Encodes bets without validating them (BatchBuilder does not validate), then takes the bets bytes. */
function betsBytes(bets: readonly Bet[]): Buffer {
  const b = new BatchBuilder(0xffff);
  for (const x of bets) expect(b.add(x)).toBe(true);
  return b.take(1).subarray(HEADER_SIZE + BATCH_HEAD);
}

/** Splits `bets` into frames the way a client does: add until refused, take, retry. */
function toFrames(bets: readonly Bet[], maxCount: number): Buffer[] {
  const b = new BatchBuilder(maxCount);
  const frames: Buffer[] = [];
  let seq = 1;
  for (const x of bets) {
    if (!b.add(x)) {
      frames.push(b.take(seq++));
      expect(b.add(x)).toBe(true);
    }
  }
  if (b.count > 0) frames.push(b.take(seq));
  return frames;
}

describe('BatchBuilder limits', () => {
  it('never builds a frame over 8192 bytes, even with 255-byte names and maxAmount 65535', () => {
    const longAscii = 'x'.repeat(255);
    const longUtf8 = 'ñ'.repeat(127) + 'a'; // 255 bytes, 128 characters
    const bets = Array.from({ length: 200 }, (_, i) =>
      bet(i, { firstName: i % 2 ? longAscii : longUtf8, lastName: i % 3 ? longUtf8 : longAscii, document: '1234567890' }),
    );
    const frames = toFrames(bets, 65535);
    expect(frames.length).toBeGreaterThan(1);
    const decoded: Bet[] = [];
    for (const [i, f] of frames.entries()) {
      const batch = parseBatch(f);
      expect(batch.first).toBe(i + 1);
      // No room wasted: the next bet would not have fit.
      if (i < frames.length - 1) expect(f.length + encodedBetSize(bets[decoded.length + batch.count]!)).toBeGreaterThan(MAX_FRAME);
      const r = decodeBets(batch.bets, batch.count, AGENCY);
      expect(r.ok).toBe(true);
      if (r.ok) decoded.push(...r.bets);
    }
    expect(decoded).toEqual(bets);
  });

  it('add returns false when the frame has no room, and leaves the batch unchanged', () => {
    const b = new BatchBuilder(65535);
    const big = bet(0, { firstName: 'y'.repeat(255), lastName: 'z'.repeat(255) });
    const size = encodedBetSize(big);
    let n = 0;
    while (b.add(big)) n++;
    expect(n).toBe(Math.floor((MAX_FRAME - HEADER_SIZE - BATCH_HEAD) / size));
    expect(b.add(big)).toBe(false);
    expect(b.count).toBe(n);
    const frame = b.take(9);
    expect(frame.length).toBe(HEADER_SIZE + BATCH_HEAD + n * size);
    const batch = parseBatch(frame);
    expect(decodeBets(batch.bets, batch.count, AGENCY)).toEqual({ ok: true, bets: Array(n).fill(big) });
  });

  it('add returns false once maxCount bets are in, and take empties the builder', () => {
    const b = new BatchBuilder(3);
    expect([b.add(bet(1)), b.add(bet(2)), b.add(bet(3)), b.add(bet(4))]).toEqual([true, true, true, false]);
    expect(b.full).toBe(true);
    const first = parseBatch(b.take(1));
    expect(first.count).toBe(3);
    expect(b.count).toBe(0);
    expect(b.full).toBe(false);
    expect(b.add(bet(4))).toBe(true);
    const second = parseBatch(b.take(2));
    expect(decodeBets(second.bets, second.count, AGENCY)).toEqual({ ok: true, bets: [bet(4)] });
  });
});

describe('BatchBuilder.addEncoded (bets already in wire form)', () => {
  /** The bets in wire form, back to back, the way the client's reader hands them over. */
  function encoded(bets: readonly Bet[]): { bytes: Buffer; ends: number[]; count: number } {
    const ends: number[] = [];
    const bytes = Buffer.alloc(bets.length * MAX_ENCODED_BET);
    let at = 0;
    for (const x of bets) {
      at = writeBet(bytes, at, x);
      ends.push(at);
    }
    expect(at).toBe(bets.reduce((n, x) => n + encodedBetSize(x), 0));
    return { bytes, ends, count: bets.length };
  }

  /** Splits the way the client does: as many as fit, take when some were left over or the builder is full. */
  function framesOf(groups: Bet[][], maxCount: number): Buffer[] {
    const b = new BatchBuilder(maxCount);
    const frames: Buffer[] = [];
    for (const group of groups) {
      const e = encoded(group);
      for (let i = 0; i < e.count; ) {
        i += b.addEncoded(e, i);
        if (b.full || i < e.count) frames.push(b.take(frames.length + 1));
      }
    }
    if (b.count > 0) frames.push(b.take(frames.length + 1));
    return frames;
  }

  it('builds the very frames that add() builds, across groups, the 8 KiB cut and maxCount', () => {
    const bets = Array.from({ length: 700 }, (_, i) => bet(i, i % 7 === 0 ? { firstName: 'ñ'.repeat(100 + (i % 27)) } : {}));
    const groups = [bets.slice(0, 1), bets.slice(1, 333), bets.slice(333, 334), bets.slice(334)];
    for (const maxCount of [1, 7, 150, 65535]) {
      expect(framesOf(groups, maxCount).map((f) => f.toString('hex'))).toEqual(toFrames(bets, maxCount).map((f) => f.toString('hex')));
    }
  });

  it('takes nothing when the builder is full', () => {
    const b = new BatchBuilder(2);
    const e = encoded([bet(1), bet(2), bet(3)]);
    expect(b.addEncoded(e, 0)).toBe(2);
    expect(b.addEncoded(e, 2)).toBe(0);
    expect(parseBatch(b.take(1)).count).toBe(2);
    expect(b.addEncoded(e, 2)).toBe(1);
  });
});

describe('single-bet batches', () => {
  it('a batch with a single bet round-trips', () => {
    const b = new BatchBuilder(10);
    expect(b.add(bet(42))).toBe(true);
    const batch = parseBatch(b.take(5));
    expect([batch.first, batch.count]).toEqual([5, 1]);
    expect(decodeBets(batch.bets, batch.count, AGENCY)).toEqual({ ok: true, bets: [bet(42)] });
  });

  it('the last batch of a split holds a single bet and still round-trips', () => {
    const bets = Array.from({ length: 11 }, (_, i) => bet(i));
    const frames = toFrames(bets, 5);
    const batches = frames.map(parseBatch);
    expect(batches.map((x) => x.count)).toEqual([5, 5, 1]);
    const all = batches.flatMap((x) => {
      const r = decodeBets(x.bets, x.count, AGENCY);
      if (!r.ok) throw new Error(r.reason);
      return r.bets;
    });
    expect(all).toEqual(bets);
  });
});

describe('decodeBets validation', () => {
  it('accepts number 0, number 9999, a 10-digit DNI and 29 February of a leap year', () => {
    const ok = [bet(0, { number: 0 }), bet(1, { number: 9999 }), bet(2, { document: '9999999999' }), bet(3, { birthdate: '2024-02-29' })];
    expect(decodeBets(betsBytes(ok), ok.length, AGENCY)).toEqual({ ok: true, bets: ok });
  });

  it.each([
    ['an empty first name', { firstName: '' }, /first name/],
    ['a blank last name', { lastName: '   ' }, /last name/],
    ['a name with a line break', { lastName: 'Pérez\r\nX' }, /last name/],
    ['a DNI with letters', { document: '12a45678' }, /document "12a45678"/],
    ['an 11-digit DNI', { document: '12345678901' }, /document "12345678901"/],
    ['an empty DNI', { document: '' }, /document ""/],
    ['29 February of a common year', { birthdate: '2023-02-29' }, /birth date "2023-02-29"/],
    ['30 February of a leap year', { birthdate: '2024-02-30' }, /birth date "2024-02-30"/],
    ['a date in another format', { birthdate: '17/05/1990' }, /birth date/],
    ['number 10000', { number: 10000 }, /number 10000/],
    ['another agency', { agency: AGENCY + 1 }, new RegExp(`agency ${AGENCY + 1} is not this connection's agency ${AGENCY}`)],
  ] as const)('reports the index and reason of the first bad bet: %s', (_what, over, reason) => {
    const bets = [bet(0), bet(1), bet(2, over), bet(3, { document: 'bad' })];
    const r = decodeBets(betsBytes(bets), bets.length, AGENCY);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.index).toBe(2);
    expect(r.reason).toMatch(reason);
  });

  it('reports a batch that announces more bets than it holds as truncated', () => {
    const bets = [bet(0), bet(1)];
    const r = decodeBets(betsBytes(bets), 3, AGENCY);
    expect(r).toMatchObject({ ok: false, index: 2 });
    if (!r.ok) expect(r.reason).toMatch(/bet 2 is truncated/);
  });

  it('reports a bet cut in the middle as truncated', () => {
    const bytes = betsBytes([bet(0), bet(1)]);
    for (const cut of [1, 5, encodedBetSize(bet(1)) - 1]) {
      const r = decodeBets(bytes.subarray(0, bytes.length - cut), 2, AGENCY);
      expect(r, `cut ${cut}`).toMatchObject({ ok: false, index: 1 });
    }
  });

  it('reports bytes after the announced bets', () => {
    const bets = [bet(0), bet(1), bet(2)];
    const r = decodeBets(betsBytes(bets), 2, AGENCY);
    expect(r).toMatchObject({ ok: false, index: 2 });
    if (!r.ok) expect(r.reason).toMatch(new RegExp(`${encodedBetSize(bets[2]!)} bytes after the 2 bets`));
    expect(decodeBets(Buffer.from([0]), 0, AGENCY)).toMatchObject({ ok: false, index: 0 });
  });

  it('accepts an empty batch of zero bets', () => {
    expect(decodeBets(Buffer.alloc(0), 0, AGENCY)).toEqual({ ok: true, bets: [] });
  });
});
