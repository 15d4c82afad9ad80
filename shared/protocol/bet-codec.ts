/**
 * Bets inside a BATCH payload: `seq: u32 | count: u16 | bet*`, each bet
 * `agency: u32 | firstName: str8 | lastName: str8 | document: str8 | birthdate: str8 | number: u16`
 * where str8 is a u8 byte length then UTF-8 bytes.
 */
import { betProblem, type Bet } from '../domain/bet.js';
import { ProtocolError } from './errors.js';
import { HEADER_SIZE, MAX_FRAME, MessageType } from './messages.js';
import { PayloadReader } from './payload.js';

const BATCH_HEAD = 6; // seq u32 + count u16
const MAX_COUNT = 0xffff;

export function encodedBetSize(bet: Bet): number {
  return 4 + 4 + 2 +
    Buffer.byteLength(bet.firstName) + Buffer.byteLength(bet.lastName) +
    Buffer.byteLength(bet.document) + Buffer.byteLength(bet.birthdate);
}

/**
 * Accumulates bets into one BATCH frame of at most MAX_FRAME bytes. The caller checks
 * `betProblem` first: a name over 255 bytes cannot be encoded.
 */
export class BatchBuilder {
  #buf = Buffer.allocUnsafe(MAX_FRAME);
  #pos = HEADER_SIZE + BATCH_HEAD;
  #count = 0;
  readonly #maxCount: number;

  constructor(maxCount: number) {
    this.#maxCount = Math.min(maxCount, MAX_COUNT);
  }

  get count(): number { return this.#count; }
  get full(): boolean { return this.#count >= this.#maxCount; }

  /** Appends the bet, or returns false (and changes nothing) when the frame has no room for it. */
  add(bet: Bet): boolean {
    if (this.full || this.#pos + encodedBetSize(bet) > MAX_FRAME) return false;
    const b = this.#buf;
    let p = b.writeUInt32BE(bet.agency, this.#pos);
    for (const s of [bet.firstName, bet.lastName, bet.document, bet.birthdate]) {
      const n = b.write(s, p + 1, 'utf8');
      b.writeUInt8(n, p);
      p += 1 + n;
    }
    this.#pos = b.writeUInt16BE(bet.number, p);
    this.#count++;
    return true;
  }

  /** Returns the whole frame (a copy) and empties the builder. */
  take(seq: number): Buffer {
    const b = this.#buf;
    b.writeUInt8(MessageType.BATCH, 0);
    b.writeUInt32BE(this.#pos - HEADER_SIZE, 1);
    b.writeUInt32BE(seq, HEADER_SIZE);
    b.writeUInt16BE(this.#count, HEADER_SIZE + 4);
    const frame = Buffer.from(b.subarray(0, this.#pos));
    this.#pos = HEADER_SIZE + BATCH_HEAD;
    this.#count = 0;
    return frame;
  }
}

export type DecodedBets =
  | { ok: true; bets: Bet[] }
  | { ok: false; index: number; reason: string };

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
