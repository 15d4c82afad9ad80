/**
 * Streams an agency CSV (`nombre,apellido,documento,nacimiento,numero`, no header) as bets
 * already in wire form. Memory stays flat: 64 KiB reads, each decoded (row-decoder.ts) before
 * the next one. A bad row never takes good rows with it: `onBadRow` hears its file, line and
 * reason, and reading goes on.
 */
import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { Bet } from '../shared/domain/bet.js';
import { type EncodedBets, decodeBets } from '../shared/protocol/bet-codec.js';
import { DataFileError } from './errors.js';
import { AgencyRowDecoder } from './row-decoder.js';

/**
 * Fails unless `path` is a regular file we may read: run before connecting, so a missing
 * file or a directory is reported with its path, not after the connect retries or the HELLO.
 */
export async function checkDataFile(path: string): Promise<void> {
  let problem: string | null = null;
  try {
    const info = await stat(path);
    if (info.isDirectory()) problem = 'it is a directory, not a file';
    else if (!info.isFile()) problem = 'it is not a regular file';
    else await access(path, constants.R_OK);
  } catch (err) {
    problem = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
  if (problem !== null) throw new DataFileError(path, problem);
}

export interface BadRow {
  file: string;
  line: number;
  error: string;
}

export interface ReadOptions {
  path: string;
  agency: number;
  onBadRow: (bad: BadRow) => void;
  signal?: AbortSignal;
  /** Called once the file is closed, after the last row or on abort/error. */
  onClose?: () => void;
}

/**
 * The agency's valid bets in file order, in wire form, one group per read. A group is valid
 * until the next one is asked for (its bytes are reused): copy what you keep (BatchBuilder
 * does).
 */
export async function* readAgencyBetChunks(opts: ReadOptions): AsyncGenerator<EncodedBets> {
  const { path, onBadRow } = opts;
  // 64 KiB: a read's bets die young. Larger chunks outlive scavenges while their batches
  // wait for acks, and grow the old generation (docs/benchmarks.md).
  const source = createReadStream(path, { highWaterMark: 1 << 16, signal: opts.signal });
  if (opts.onClose) source.once('close', opts.onClose);
  const decoder = new AgencyRowDecoder(opts.agency, (line, error) => onBadRow({ file: path, line, error }));
  try {
    for await (const chunk of source) {
      decoder.push(chunk as Buffer);
      const bets = decoder.take();
      if (bets.count > 0) yield bets;
    }
    decoder.end();
    const bets = decoder.take();
    if (bets.count > 0) yield bets;
  } catch (err) {
    // fs errors name no path ("EISDIR: illegal operation on a directory, read").
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('E')) throw new Error(`reading ${path}: ${(err as Error).message}`, { cause: err });
    throw err;
  } finally {
    source.destroy();
  }
}

/** The agency's bets one by one, as objects (tests and tools; the client sends the wire form). */
export async function* readAgencyBets(opts: ReadOptions): AsyncGenerator<Bet> {
  for await (const chunk of readAgencyBetChunks(opts)) yield* betsOf(chunk, opts.agency);
}

/** Decodes a group of wire-form bets back into objects. */
export function betsOf(chunk: EncodedBets, agency: number): Bet[] {
  const decoded = decodeBets(chunk.bytes.subarray(0, chunk.ends[chunk.count - 1] ?? 0), chunk.count, agency);
  if (!decoded.ok) throw new Error(`the reader encoded a bet it should have refused: ${decoded.reason}`);
  return decoded.bets;
}
