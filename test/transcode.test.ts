/**
 * The pool worker's transcoder against the slow path (decodeBets + betsToRows), for both of its
 * forms: the WebAssembly module (wasm/transcode.ts) that transcodeBatch runs, and its
 * JavaScript twin, which runs where Node has no WebAssembly.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Bet } from '../shared/domain/bet.js';
import { MAX_ENCODED_BET, decodeBets, writeBet } from '../shared/protocol/bet-codec.js';
import { maxRowsSize, transcodeBatch, transcodeBatchJs } from '../server/pool/transcode.js';
import { TRANSCODE_WASM } from '../server/pool/transcode-wasm.js';
import { betsToRows } from '../server/storage/bets-file.js';
import { ROOT, evalJitless } from './helpers/processes.js';

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
  'a'.repeat(255),
  `${'a'.repeat(253)}\u00f1`,
  'Ana\u00c2',
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

/** The bets part of a BATCH frame, as a worker receives it (of any size: a frame holds ~8 KiB). */
function batchBytes(bets: Bet[]): Buffer {
  const b = Buffer.alloc(bets.length * MAX_ENCODED_BET);
  let p = 0;
  for (const bet of bets) p = writeBet(b, p, bet);
  return b.subarray(0, p);
}

type Transcode = typeof transcodeBatch;

/** The rows `transcode` writes, at an offset into a buffer of bytes that must stay as they are. */
function rowsOf(transcode: Transcode, bytes: Buffer, count: number, agency: number): Buffer | null {
  const at = 7;
  const out = Buffer.alloc(at + maxRowsSize(bytes.length, count), 0xee);
  const end = transcode(bytes, count, agency, out, at);
  expect(out.subarray(0, at).every((b) => b === 0xee)).toBe(true);
  return end === null ? null : out.subarray(at, end);
}

describe.each([
  ['WebAssembly', transcodeBatch],
  ['JavaScript', transcodeBatchJs],
] as const)('transcodeBatch (%s) agrees with decodeBets + betsToRows', (_, transcode) => {
  const fast = (bytes: Buffer, count: number, agency: number): Buffer | null => rowsOf(transcode, bytes, count, agency);

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

  it('treats every byte and every two-byte lead in a name as the slow path does', () => {
    const bet: Bet = { agency: 1, firstName: 'ABCDEFG', lastName: 'Paz', document: '1', birthdate: '2000-01-01', number: 1 };
    const template = batchBytes([bet]);
    // The first name's bytes start after the agency (4) and its length (1).
    const check = (bytes: Buffer): void => {
      const slow = decodeBets(bytes, 1, 1);
      const got = fast(bytes, 1, 1);
      if (!slow.ok) expect(got).toBeNull();
      else if (got !== null) expect(got.toString('latin1')).toBe(betsToRows(slow.bets).toString('latin1'));
    };
    for (let b = 0; b < 256; b++) {
      const bytes = Buffer.from(template);
      bytes[6] = b;
      check(bytes);
    }
    // Followed by ASCII after 0, 1 or 2 more continuation bytes: sequences of 2, 3 and 4 bytes.
    for (const tail of [[], [0x80], [0x80, 0x80]]) {
      for (let lead = 0xc0; lead < 0xf8; lead++) {
        for (let next = 0; next < 256; next++) {
          const bytes = Buffer.from(template);
          bytes.set([lead, next, ...tail], 6);
          check(bytes);
        }
      }
    }
  });

  it('writes every number from 0 to 9999 and agencies of every length', () => {
    const bet = (agency: number, number: number): Bet => ({
      agency,
      firstName: 'A',
      lastName: 'B',
      document: '1',
      birthdate: '2000-01-01',
      number,
    });
    for (let from = 0; from < 10_000; from += 1000) {
      const bets = Array.from({ length: 1000 }, (_, i) => bet(4, from + i));
      const got = fast(batchBytes(bets), bets.length, 4)?.toString();
      expect(got).toBe(bets.map((b) => `4,A,B,1,2000-01-01,${b.number}\r\n`).join(''));
    }
    for (const agency of [0, 9, 10, 99, 100, 65_535, 1_000_000_000, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]) {
      expect(fast(batchBytes([bet(agency, 7574)]), 1, agency)?.toString()).toBe(`${agency},A,B,1,2000-01-01,7574\r\n`);
      expect(fast(batchBytes([bet(agency, 1)]), 1, (agency + 1) % 2 ** 32)).toBeNull();
    }
  });
});

describe('the WebAssembly transcoder', () => {
  it('writes exactly what its JavaScript twin writes, on batches of up to 400 random bets', () => {
    const r = rng(4242);
    let compared = 0;
    for (let trial = 0; trial < 300; trial++) {
      const agency = Math.floor(r() * 2 ** 32);
      const bets = Array.from({ length: 1 + Math.floor(r() * 400) }, () => randomBet(r, agency));
      const bytes = batchBytes(bets.map((b) => ({ ...b, agency: b.agency % 2 ** 32 })));
      // A batch over the module's memory goes to the JavaScript path: it would compare the twin with itself.
      if (bytes.length > 0x10000) continue;
      // Now and then a byte changed at random, or a count one off: both decline, or both write the same.
      if (r() < 0.3) bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256);
      const count = r() < 0.1 ? bets.length + (r() < 0.5 ? -1 : 1) : bets.length;
      const wasm = rowsOf(transcodeBatch, bytes, count, agency);
      const js = rowsOf(transcodeBatchJs, bytes, count, agency);
      expect(wasm?.toString('latin1')).toBe(js?.toString('latin1'));
      compared++;
    }
    expect(compared).toBeGreaterThan(250);
  });

  it('leaves a batch larger than its memory to the JavaScript path, with the same rows', () => {
    const bets = Array.from(
      { length: 3000 },
      (_, i): Bet => ({
        agency: 2,
        firstName: 'Nombre',
        lastName: 'Apellido',
        document: String(i + 1),
        birthdate: '1990-05-17',
        number: i,
      }),
    );
    const bytes = batchBytes(bets);
    expect(bytes.length).toBeGreaterThan(0x10000);
    expect(rowsOf(transcodeBatch, bytes, bets.length, 2)?.toString()).toBe(betsToRows(bets).toString());
  });

  it('is left for the JavaScript path where Node has no WebAssembly (--jitless)', () => {
    const bytes = batchBytes([{ agency: 5, firstName: 'Ana', lastName: 'Paz', document: '7', birthdate: '1990-01-02', number: 12 }]);
    const out = evalJitless(
      `import { transcodeBatch } from ${JSON.stringify(join(ROOT, 'server/pool/transcode.ts'))};
       const out = Buffer.alloc(100);
       const end = transcodeBatch(Buffer.from(${JSON.stringify(bytes.toString('base64'))}, 'base64'), 1, 5, out, 0);
       process.stdout.write(JSON.stringify({ wasm: typeof WebAssembly, rows: out.toString('utf8', 0, end) }));`,
    );
    expect(JSON.parse(out)).toEqual({ wasm: 'undefined', rows: '5,Ana,Paz,7,1990-01-02,12\r\n' });
  });

  it('is the build of wasm/transcode.ts (after an edit there: npm run build:wasm)', async () => {
    const { TRANSCODE, compileWasm, renderModule } = await import('../tools/lib/wasm.js');
    const binary = await compileWasm(ROOT, TRANSCODE);
    expect(renderModule(TRANSCODE, binary)).toContain(`'${TRANSCODE_WASM}'`);
  });
});
