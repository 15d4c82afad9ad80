/**
 * Bets inside a BATCH payload: `first: u32 | count: u16 | bet*`, each bet
 * `agency: u32 | firstName: str8 | lastName: str8 | document: str8 | birthdate: str8 | number: u16`
 * where str8 is a u8 byte length then UTF-8 bytes.
 */
import { betProblem, type Bet } from '../domain/bet.js';
import { ProtocolError } from './errors.js';
import { HEADER_SIZE, MAX_FRAME, MessageType } from './messages.js';
import { PayloadReader } from './payload.js';

const BATCH_HEAD = 6; // first u32 + count u16
/** The smallest valid bet on the wire: agency, 1-byte names and document, a 10-byte date, number. */
export const MIN_ENCODED_BET = 4 + 2 + 2 + 2 + 11 + 2;
const MAX_COUNT = 0xffff;

/** Writes a u8 length and the UTF-8 bytes (ASCII by hand: cheaper than a native call for short text). */
function writeStr8(b: Buffer, p: number, s: string): number {
  if (s.length > 255) throw new RangeError(`a field of ${s.length} characters does not fit in a str8 (255 bytes); check betProblem first`);
  let o = p + 1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      const n = b.write(s, p + 1, 'utf8');
      if (n > 255 || Buffer.byteLength(s) > 255)
        throw new RangeError('a field over 255 UTF-8 bytes does not fit in a str8; check betProblem first');
      b[p] = n;
      return p + 1 + n;
    }
    b[o++] = c;
  }
  b[p] = s.length;
  return o;
}

/** The largest bet on the wire: agency, four str8 of 255 bytes, number. */
export const MAX_ENCODED_BET = 4 + 4 * 256 + 2;

/**
 * Writes one bet in wire form at b[p] and returns its end. Needs MAX_ENCODED_BET bytes of
 * room; the caller checks `betProblem` first (a name over 255 bytes cannot be encoded).
 */
export function writeBet(b: Buffer, p: number, bet: Bet): number {
  b[p] = bet.agency >>> 24;
  b[p + 1] = bet.agency >>> 16;
  b[p + 2] = bet.agency >>> 8;
  b[p + 3] = bet.agency;
  p = writeStr8(b, p + 4, bet.firstName);
  p = writeStr8(b, p, bet.lastName);
  p = writeStr8(b, p, bet.document);
  p = writeStr8(b, p, bet.birthdate);
  b[p] = bet.number >>> 8;
  b[p + 1] = bet.number;
  return p + 2;
}

/** Bets already in wire form, back to back: bet i is bytes[i === 0 ? 0 : ends[i - 1], ends[i]). */
export interface EncodedBets {
  readonly bytes: Buffer;
  readonly ends: ArrayLike<number>;
  readonly count: number;
}

/**
 * Accumulates bets into one BATCH frame of at most MAX_FRAME bytes. The caller checks
 * `betProblem` first: a name over 255 bytes cannot be encoded.
 */
export class BatchBuilder {
  // Room past MAX_FRAME for one bet of the largest size: a bet is written first and taken
  // back if the frame went over the limit.
  #buf = Buffer.allocUnsafe(MAX_FRAME + MAX_ENCODED_BET);
  #pos = HEADER_SIZE + BATCH_HEAD;
  #count = 0;
  readonly #maxCount: number;

  constructor(maxCount: number) {
    this.#maxCount = Math.min(maxCount, MAX_COUNT);
  }

  get count(): number {
    return this.#count;
  }
  get full(): boolean {
    return this.#count >= this.#maxCount;
  }

  /** Appends the bet, or returns false (and changes nothing) when the frame has no room for it. */
  add(bet: Bet): boolean {
    if (this.full) return false;
    const p = writeBet(this.#buf, this.#pos, bet);
    if (p > MAX_FRAME) return false;
    this.#pos = p;
    this.#count++;
    return true;
  }

  /**
   * Appends bets `from`, `from + 1`... of `bets` while the frame has room for them (one copy)
   * and returns how many it took: fewer than offered means the frame is full.
   */
  addEncoded(bets: EncodedBets, from: number): number {
    const { ends } = bets;
    const start = from === 0 ? 0 : ends[from - 1]!;
    const room = Math.min(bets.count, from + this.#maxCount - this.#count);
    const last = fitting(ends, from, room, MAX_FRAME - this.#pos + start);
    if (last === from) return 0;
    const end = ends[last - 1]!;
    bets.bytes.copy(this.#buf, this.#pos, start, end);
    this.#pos += end - start;
    this.#count += last - from;
    return last - from;
  }

  /** Returns the whole frame (a copy), `first` being the index of its first bet, and empties the builder. */
  take(first: number): Buffer {
    const b = this.#buf;
    b.writeUInt8(MessageType.BATCH, 0);
    b.writeUInt32BE(this.#pos - HEADER_SIZE, 1);
    b.writeUInt32BE(first, HEADER_SIZE);
    b.writeUInt16BE(this.#count, HEADER_SIZE + 4);
    const frame = Buffer.from(b.subarray(0, this.#pos));
    this.#pos = HEADER_SIZE + BATCH_HEAD;
    this.#count = 0;
    return frame;
  }
}

/**
 * The first index in [from, room) whose bet ends past `limit` (an offset in the bets' bytes),
 * or `room`. The only loop per bet in BatchBuilder, apart so that V8 optimises it alone: the
 * optimising compile of a method with the loop inside took in Buffer's copy as well, for
 * longer than a short run spends in it (docs/benchmarks.md).
 */
function fitting(ends: ArrayLike<number>, from: number, room: number, limit: number): number {
  let last = from;
  while (last < room && ends[last]! <= limit) last++;
  return last;
}

export type DecodedBets = { ok: true; bets: Bet[] } | { ok: false; index: number; reason: string };

/**
 * Decodes and validates `count` bets for `agency`. The first bad bet fails the batch:
 * its index and the reason come back, so the whole batch can be refused.
 */
export function decodeBets(bytes: Buffer, count: number, agency: number): DecodedBets {
  const r = new PayloadReader(bytes);
  const bets: Bet[] = new Array<Bet>(count);
  for (let i = 0; i < count; i++) {
    let bet: Bet;
    try {
      bet = {
        agency: r.u32('agency'),
        firstName: r.str8('first name'),
        lastName: r.str8('last name'),
        document: r.str8('document'),
        birthdate: r.str8('birth date'),
        number: r.u16('number'),
      };
    } catch (err) {
      if (err instanceof ProtocolError) return { ok: false, index: i, reason: `bet ${i} is truncated: ${err.message}` };
      throw err;
    }
    const problem = betProblem(bet, agency);
    if (problem !== null) return { ok: false, index: i, reason: problem };
    bets[i] = bet;
  }
  if (r.remaining !== 0) return { ok: false, index: count, reason: `${r.remaining} bytes after the ${count} bets the batch announced` };
  return { ok: true, bets };
}
