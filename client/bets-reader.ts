/**
 * Streams an agency CSV (`nombre,apellido,documento,nacimiento,numero`, no header) as bets
 * already in wire form. Memory stays flat: 64 KiB reads, each decoded (row-decoder.ts) before
 * the next one. A bad row never takes good rows with it: `onBadRow` hears its file, line and
 * reason, and reading goes on.
 */
import { constants } from 'node:fs';
import { type FileHandle, access, open, stat } from 'node:fs/promises';
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
  /** Called once when reading is over (after the last row, an abort or an error), once the file is closed if it opened. */
  onClose?: () => void;
}

/**
 * The agency's valid bets in file order, in wire form, one group per read. A group is valid
 * until the next one is asked for (its bytes are reused): copy what you keep (BatchBuilder
 * does).
 */
export async function* readAgencyBetChunks(opts: ReadOptions): AsyncGenerator<EncodedBets> {
  const { path, onBadRow, signal } = opts;
  const decoder = new AgencyRowDecoder(opts.agency, (line, error) => onBadRow({ file: path, line, error }));
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (err) {
    opts.onClose?.();
    throw withPath(path, err);
  }
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= file.close().finally(() => opts.onClose?.());
    return closed;
  };
  // An abort closes the file at once, even while the consumer holds this generator at a
  // yield; a read under way finishes first (FileHandle.close waits for it), and its bytes are
  // dropped by the check after it. A failed close surfaces from the `finally` below.
  const onAbort = (): void => void close().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // One 64 KiB buffer for every read: the decoder copies what it keeps of a read (a cut
    // line), so a long file allocates nothing per read, and a read's bets die young.
    const buffer = Buffer.allocUnsafeSlow(1 << 16);
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      signal?.throwIfAborted();
      if (bytesRead === 0) break;
      decoder.push(buffer.subarray(0, bytesRead));
      const bets = decoder.take();
      if (bets.count > 0) yield bets;
    }
    decoder.end();
    const bets = decoder.take();
    if (bets.count > 0) yield bets;
  } catch (err) {
    throw withPath(path, err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await close();
  }
}

/** fs errors name no path ("EISDIR: illegal operation on a directory, read"): this one does. */
function withPath(path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && code.startsWith('E')) return new Error(`reading ${path}: ${(err as Error).message}`, { cause: err });
  return err;
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
