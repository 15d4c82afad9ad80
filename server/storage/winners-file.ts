/**
 * The draw's result on disk (`<bets>.winners`): one row `agency,document` (CRLF) per winning
 * bet, agencies in the order the draw met them, documents in file order. Written whole under a
 * temporary name, flushed, then renamed over: a reader sees the old file or the new one, never
 * half of one. The DRAW journal record that follows carries its CRC-32, so recovery knows the
 * file it finds is the one the draw wrote.
 */
import { closeSync, existsSync, fdatasyncSync, fsyncSync, openSync, readFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from '../../shared/util/crc32.js';
import { writeAll } from './bets-file.js';

export type Winners = Array<[agency: number, documents: string[]]>;

export function encodeWinners(winners: Winners): Buffer {
  let text = '';
  for (const [agency, documents] of winners) for (const d of documents) text += `${agency},${d}\r\n`;
  return Buffer.from(text, 'ascii');
}

/** Winners from the bytes encodeWinners wrote; null when they are not such bytes. */
export function decodeWinners(bytes: Buffer): Winners | null {
  const byAgency = new Map<number, string[]>();
  const text = bytes.toString('ascii');
  if (text !== '' && !text.endsWith('\r\n')) return null;
  for (const line of text.split('\r\n').slice(0, -1)) {
    const m = /^([0-9]{1,10}),([0-9]{1,10})$/.exec(line);
    if (m === null) return null;
    const agency = Number(m[1]);
    const list = byAgency.get(agency);
    if (list === undefined) byAgency.set(agency, [m[2]!]);
    else list.push(m[2]!);
  }
  return [...byAgency];
}

/** Makes a rename or a new file's name durable: the directory entry lives in the directory. */
export function fsyncDirectory(path: string): void {
  const fd = openSync(dirname(path), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes the winners file atomically (temp name, flush, rename); returns the CRC-32 of its bytes. */
export function writeWinnersFile(path: string, winners: Winners, fsync: boolean): { crc: number; count: number } {
  const bytes = encodeWinners(winners);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, bytes);
    if (fsync) fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  if (fsync) fsyncDirectory(path);
  return { crc: crc32(bytes), count: winners.reduce((n, [, docs]) => n + docs.length, 0) };
}

/** The winners file's bytes, or null when it does not exist. */
export function readWinnersFile(path: string): Buffer | null {
  return existsSync(path) ? readFileSync(path) : null;
}
