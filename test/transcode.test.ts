import { describe, expect, it } from 'vitest';
import type { Bet } from '../shared/domain/bet.js';
import { BatchBuilder, decodeBets } from '../shared/protocol/bet-codec.js';
import { HEADER_SIZE } from '../shared/protocol/messages.js';
import { maxRowsSize, transcodeBatch } from '../server/pool/transcode.js';
import { betsToRows } from '../server/storage/bets-file.js';

/** Deterministic PRNG so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = [
  'María Belén',
  'Ana',
  'Saldaña',
  'O"Neil',
  'Pérez, Juan',
  ' ',
  '\u00a0',
  'Zoë',
  '"',
  ',',
  'x\ty',
  'Łukasz',
  '  Nicolás  ',
  'Jo\u{1F600}',
  '\u{10FFFF}x',
  '\u20ac',
  'C1\u0085',
];
const DOCS = ['12345678', '1', '0000000000', '12345678901', '12a4', ''];
const DATES = ['1990-01-01', '2000-02-29', '1900-02-29', '2023-02-30', '1999-13-01', '0000-01-01', '1990-1-01', '2024-04-31', '2024-04-30'];

function randomBet(r: () => number, agency: number): Bet {
  // Mostly the first (valid) entry of each list, so that whole batches are often valid.
  const pick = <T>(xs: readonly T[]): T => (r() < 0.75 ? xs[0]! : xs[Math.floor(r() * xs.length)]!);
  return {
    agency: r() < 0.05 ? agency + 1 : agency,
    firstName: pick(NAMES),
    lastName: pick(NAMES),
    document: pick(DOCS),
    birthdate: pick(DATES),
    number: r() < 0.1 ? 10_000 + Math.floor(r() * 50_000) : Math.floor(r() * 10_000),
  };
}

/** The bets part of a BATCH frame, as a worker receives it. */
function batchBytes(bets: Bet[]): Buffer {
  const b = new BatchBuilder(bets.length);
  for (const bet of bets) expect(b.add(bet)).toBe(true);
  return b.take(1).subarray(HEADER_SIZE + 6);
}

function fast(bytes: Buffer, count: number, agency: number): Buffer | null {
  const out = Buffer.alloc(maxRowsSize(bytes.length, count));
  const end = transcodeBatch(bytes, count, agency, out, 0);
  return end === null ? null : out.subarray(0, end);
}

describe('transcodeBatch agrees with decodeBets + betsToRows', () => {
  it('accepts only what the slow path accepts, and writes the same rows', () => {
    const r = rng(7574);
    let accepted = 0;
    let declined = 0;
    for (let trial = 0; trial < 3000; trial++) {
      const agency = 1 + Math.floor(r() * 5);
      const bets = Array.from({ length: 1 + Math.floor(r() * 4) }, () => randomBet(r, agency));
      const bytes = batchBytes(bets);
      const slow = decodeBets(bytes, bets.length, agency);
      const got = fast(bytes, bets.length, agency);
      if (got === null) {
        declined++;
        continue;
      }
      accepted++;
      expect(slow.ok).toBe(true);
      if (slow.ok) expect(got.toString('utf8')).toBe(betsToRows(slow.bets).toString('utf8'));
    }
    // Both paths are exercised: the generator makes good and bad batches.
    expect(accepted).toBeGreaterThan(100);
    expect(declined).toBeGreaterThan(100);
  });

  it('declines truncated input, trailing bytes, bad UTF-8 and control bytes', () => {
    const good: Bet = { agency: 3, firstName: 'Ana', lastName: 'Saldaña', document: '30111222', birthdate: '1980-02-29', number: 0 };
    const bytes = batchBytes([good]);
    expect(fast(bytes, 1, 3)?.toString()).toBe('3,Ana,Saldaña,30111222,1980-02-29,0\r\n');
    for (let cut = 0; cut < bytes.length; cut++) expect(fast(bytes.subarray(0, cut), 1, 3)).toBeNull();
    expect(fast(Buffer.concat([bytes, Buffer.from([0])]), 1, 3)).toBeNull();
    const badUtf8 = Buffer.from(bytes);
    badUtf8[5] = 0xff; // first byte of the first name
    expect(fast(badUtf8, 1, 3)).toBeNull();
    // Overlong, surrogate and cut multi-byte sequences in the first name ('Ana' -> bytes 5..7).
    for (const seq of [
      [0xc0, 0x80, 0x41],
      [0xed, 0xa0, 0x80],
      [0x41, 0x41, 0xc3],
      [0xf4, 0x90, 0x80],
    ]) {
      const bad = Buffer.from(bytes);
      bad.set(seq, 5);
      expect(fast(bad, 1, 3)).toBeNull();
    }
    const control = Buffer.from(bytes);
    control[5] = 0x0a;
    expect(fast(control, 1, 3)).toBeNull();
    expect(decodeBets(control, 1, 3).ok).toBe(false);
  });

  it('refuses C1 control characters (U+0080-U+009F) in names, as betProblem does; U+00A0 and up pass', () => {
    for (const [name, ok] of [
      ['A\u0080b', false],
      ['A\u0085b', false],
      ['A\u009fb', false],
      ['A\u007fb', false],
      ['A\u00a0b', true],
      ['A\u00a1b', true],
    ] as const) {
      const bet: Bet = { agency: 2, firstName: 'Ana', lastName: name, document: '1', birthdate: '2000-01-01', number: 1 };
      const bytes = batchBytes([bet]);
      expect(decodeBets(bytes, 1, 2).ok).toBe(ok);
      if (ok) expect(fast(bytes, 1, 2)?.toString()).toBe(`2,Ana,${name},1,2000-01-01,1\r\n`);
      else expect(fast(bytes, 1, 2)).toBeNull();
    }
  });

  it('quotes names with commas and quotes the way Python csv does', () => {
    const bet: Bet = { agency: 1, firstName: 'Juan, "el" Pepe', lastName: 'Ñandú', document: '1', birthdate: '2000-01-01', number: 9999 };
    expect(fast(batchBytes([bet]), 1, 1)?.toString()).toBe('1,"Juan, ""el"" Pepe",Ñandú,1,2000-01-01,9999\r\n');
  });
});
