/**
 * The journal beside the bets file (`<bets>.journal`): what the server must remember across a
 * restart, as an append-only sequence of fixed-size records, each closed by a CRC-32. Layout of
 * a record (RECORD_BYTES = 32, big-endian; docs/architecture.md has the why):
 *
 *   0  u8   kind      HEADER 1, BATCH 2, FINISHED 3, DRAW 4
 *   1  u8   0
 *   2  u16  count     BATCH: bets in the batch
 *   4  u32  agency    BATCH, FINISHED: the agency; HEADER: the magic "LTJ1"
 *   8  u32  first     BATCH: index of the batch's first bet; HEADER: agencies; DRAW: winners
 *  12  u32  stored    BATCH: rows written (count, or 0 for a refused batch); DRAW: bets read
 *  16  u64  end       BATCH, DRAW: size of the bets file once the batch's rows are in
 *  24  u32  extra     DRAW: CRC-32 of the winners file
 *  28  u32  crc       CRC-32 of bytes 0..27
 *
 * The first record is the HEADER. Pure encoding and scanning here; the appends under the
 * storage lock are in protected-storage.ts, the recovery in durable-state.ts.
 */
import { fdatasyncSync, fstatSync, ftruncateSync } from 'node:fs';
import { crc32 } from '../../shared/util/crc32.js';
import { writeAll } from './bets-file.js';

export const RECORD_BYTES = 32;
const CRC_AT = 28;
/** "LTJ1": this journal's format, version 1. */
export const JOURNAL_MAGIC = 0x4c544a31;

export const RecordKind = { HEADER: 1, BATCH: 2, FINISHED: 3, DRAW: 4 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

export interface HeaderRecord {
  kind: typeof RecordKind.HEADER;
  agencies: number;
}
/** One batch consumed: `stored` rows ending at bets-file offset `end` (0 rows: refused, still consumed). */
export interface BatchRecord {
  kind: typeof RecordKind.BATCH;
  agency: number;
  first: number;
  count: number;
  stored: number;
  end: number;
}
export interface FinishedRecord {
  kind: typeof RecordKind.FINISHED;
  agency: number;
}
/** The draw is done and its winners file (checksum `winnersCrc`) is in place. */
export interface DrawRecord {
  kind: typeof RecordKind.DRAW;
  winners: number;
  scanned: number;
  end: number;
  winnersCrc: number;
}
export type JournalRecord = HeaderRecord | BatchRecord | FinishedRecord | DrawRecord;

const U32 = 2 ** 32;

/** Writes `rec` into `out` at `at` (RECORD_BYTES bytes), checksum included. */
export function writeRecord(rec: JournalRecord, out: Buffer, at = 0): void {
  out.fill(0, at, at + RECORD_BYTES);
  out[at] = rec.kind;
  switch (rec.kind) {
    case RecordKind.HEADER:
      out.writeUInt32BE(JOURNAL_MAGIC, at + 4);
      out.writeUInt32BE(rec.agencies, at + 8);
      break;
    case RecordKind.BATCH:
      out.writeUInt16BE(rec.count, at + 2);
      out.writeUInt32BE(rec.agency, at + 4);
      out.writeUInt32BE(rec.first, at + 8);
      out.writeUInt32BE(rec.stored, at + 12);
      writeU64(out, at + 16, rec.end);
      break;
    case RecordKind.FINISHED:
      out.writeUInt32BE(rec.agency, at + 4);
      break;
    case RecordKind.DRAW:
      out.writeUInt32BE(rec.winners, at + 8);
      out.writeUInt32BE(rec.scanned, at + 12);
      writeU64(out, at + 16, rec.end);
      out.writeUInt32BE(rec.winnersCrc, at + 24);
      break;
  }
  out.writeUInt32BE(crc32(out, at, at + CRC_AT), at + CRC_AT);
}

export function encodeRecords(records: readonly JournalRecord[]): Buffer {
  const out = Buffer.allocUnsafe(records.length * RECORD_BYTES);
  records.forEach((rec, i) => {
    writeRecord(rec, out, i * RECORD_BYTES);
  });
  return out;
}

/**
 * The record at `at`, or null when its bytes are not a record this code wrote: a checksum
 * that does not match, an unknown kind, or a reserved byte that is not 0.
 */
export function readRecord(buf: Buffer, at: number): JournalRecord | null {
  if (at + RECORD_BYTES > buf.length) return null;
  if (buf.readUInt32BE(at + CRC_AT) !== crc32(buf, at, at + CRC_AT) || buf[at + 1] !== 0) return null;
  const u32 = (o: number): number => buf.readUInt32BE(at + o);
  switch (buf[at]) {
    case RecordKind.HEADER:
      return u32(4) === JOURNAL_MAGIC ? { kind: RecordKind.HEADER, agencies: u32(8) } : null;
    case RecordKind.BATCH:
      return {
        kind: RecordKind.BATCH,
        agency: u32(4),
        first: u32(8),
        count: buf.readUInt16BE(at + 2),
        stored: u32(12),
        end: readU64(buf, at + 16),
      };
    case RecordKind.FINISHED:
      return { kind: RecordKind.FINISHED, agency: u32(4) };
    case RecordKind.DRAW:
      return { kind: RecordKind.DRAW, winners: u32(8), scanned: u32(12), end: readU64(buf, at + 16), winnersCrc: u32(24) };
    default:
      return null;
  }
}

/** Offsets stay below 2^53 (Number.MAX_SAFE_INTEGER), far past any bets file. */
function writeU64(out: Buffer, at: number, v: number): void {
  out.writeUInt32BE(Math.floor(v / U32), at);
  out.writeUInt32BE(v % U32, at + 4);
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * U32 + buf.readUInt32BE(at + 4);
}

export interface JournalScan {
  records: JournalRecord[];
  /** Bytes holding whole, valid records from the start: where the journal is cut back to. */
  validBytes: number;
  /**
   * Offset of a valid record found after an invalid one, or -1. A torn append only damages
   * the end of the journal; a good record behind a bad one means damage in the middle.
   */
  validAfterDamage: number;
}

/** Reads records from the start until the first one that is not valid. */
export function scanJournal(buf: Buffer): JournalScan {
  const records: JournalRecord[] = [];
  let at = 0;
  for (let rec = readRecord(buf, at); rec !== null; rec = readRecord(buf, at)) {
    records.push(rec);
    at += RECORD_BYTES;
  }
  let validAfterDamage = -1;
  for (let k = at + RECORD_BYTES; k + RECORD_BYTES <= buf.length && validAfterDamage < 0; k += RECORD_BYTES) {
    if (readRecord(buf, k) !== null) validAfterDamage = k;
  }
  return { records, validBytes: at, validAfterDamage };
}

/** What a pool worker needs to append to the journal: plain data, sent in WorkerInit. */
export interface JournalHandle {
  fd: number;
  path: string;
  /** The winners file, written before the DRAW record (winners-file.ts). */
  winnersPath: string;
  /** SERVER_FSYNC: flush rows and records to the disk before a batch is acknowledged. */
  fsync: boolean;
}

/**
 * Cuts a file back to `size` after a failed append, keeping the append's error as the one
 * reported. If even the cut fails, the next append lands after the leftover bytes and recovery
 * refuses to guess about them (a damaged record followed by good ones).
 */
export function cutBack(fd: number, size: number): void {
  try {
    ftruncateSync(fd, size);
  } catch {
    // The append's own error is the one worth reporting.
  }
}

/**
 * Appends whole records or nothing: a write that fails part-way is cut back, so the journal
 * never keeps half a record for the next append to follow. Call only under the write lock.
 */
export function appendRecords(journal: JournalHandle, records: Buffer): void {
  const size = fstatSync(journal.fd).size;
  try {
    writeAll(journal.fd, records);
    if (journal.fsync) fdatasyncSync(journal.fd);
  } catch (err) {
    cutBack(journal.fd, size);
    throw err;
  }
}
