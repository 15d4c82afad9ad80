/**
 * The journal's records byte by byte (layouts and checksums computed with Python's struct and
 * zlib.crc32, not by the code under test), and the scan that finds where a torn journal ends.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RECORD_BYTES, RecordKind, encodeRecords, readRecord, scanJournal, type JournalRecord } from '../server/storage/journal.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const FIXTURES: Array<[string, JournalRecord, string]> = [
  [
    'HEADER for 5 agencies',
    { kind: RecordKind.HEADER, agencies: 5 },
    '01 00 0000 4c544a31 00000005 00000000 0000000000000000 00000000 f2f3782e',
  ],
  [
    'BATCH agency 3, bets 300..449 stored, rows ending at byte 123456789012',
    { kind: RecordKind.BATCH, agency: 3, first: 300, count: 150, stored: 150, end: 123_456_789_012 },
    '02 00 0096 00000003 0000012c 00000096 0000001cbe991a14 00000000 427793b1',
  ],
  [
    'FINISHED agency 4',
    { kind: RecordKind.FINISHED, agency: 4 },
    '03 00 0000 00000004 00000000 00000000 0000000000000000 00000000 90577475',
  ],
  [
    'DRAW: 7 winners among 1000 bets, 54321 bytes, winners file crc deadbeef',
    { kind: RecordKind.DRAW, winners: 7, scanned: 1000, end: 54_321, winnersCrc: 0xdeadbeef },
    '04 00 0000 00000000 00000007 000003e8 000000000000d431 deadbeef 66f84560',
  ],
];

describe('journal records', () => {
  it.each(FIXTURES)('%s: exactly these 32 bytes, and back', (_what, rec, bytes) => {
    const encoded = encodeRecords([rec]);
    expect(encoded.toString('hex')).toBe(hex(bytes).toString('hex'));
    expect(encoded.length).toBe(RECORD_BYTES);
    expect(readRecord(hex(bytes), 0)).toEqual(rec);
  });

  it('refuses a record with any single byte changed (checksum), and one cut short', () => {
    for (const [, rec] of FIXTURES) {
      const good = encodeRecords([rec]);
      for (let i = 0; i < RECORD_BYTES; i++) {
        for (const flip of [0x01, 0x80, 0xff]) {
          const bad = Buffer.from(good);
          bad[i]! ^= flip;
          expect(readRecord(bad, 0), `byte ${i} ^ ${flip}`).toBeNull();
        }
      }
      expect(readRecord(good.subarray(0, RECORD_BYTES - 1), 0)).toBeNull();
    }
  });

  it('refuses zeroed bytes (a block the disk never wrote) and a header with another magic', () => {
    expect(readRecord(Buffer.alloc(RECORD_BYTES), 0)).toBeNull();
    const other = hex('01 00 0000 4c544a32 00000005 00000000 0000000000000000 00000000 00000000');
    expect(readRecord(other, 0)).toBeNull();
  });

  it('round-trips any batch record', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.boolean(),
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        (agency, first, count, stored, end) => {
          const rec: JournalRecord = { kind: RecordKind.BATCH, agency, first, count, stored: stored ? count : 0, end };
          expect(readRecord(encodeRecords([rec]), 0)).toEqual(rec);
        },
      ),
    );
  });
});

describe('scanJournal', () => {
  const records: JournalRecord[] = [
    { kind: RecordKind.HEADER, agencies: 2 },
    { kind: RecordKind.BATCH, agency: 1, first: 0, count: 2, stored: 2, end: 80 },
    { kind: RecordKind.BATCH, agency: 2, first: 0, count: 1, stored: 0, end: 80 },
    { kind: RecordKind.FINISHED, agency: 1 },
  ];
  const whole = encodeRecords(records);

  it('reads every record of an intact journal', () => {
    expect(scanJournal(whole)).toEqual({ records, validBytes: whole.length, validAfterDamage: -1 });
  });

  it.each([
    ['cut mid-record', whole.subarray(0, 3 * RECORD_BYTES + 17), 3],
    ['garbage after the last record', Buffer.concat([whole, Buffer.from('garbage, not a record at all....')]), 4],
    ['zeros after the last record', Buffer.concat([whole, Buffer.alloc(100)]), 4],
    ['the last record damaged', Buffer.concat([whole.subarray(0, 3 * RECORD_BYTES), Buffer.alloc(RECORD_BYTES, 7)]), 3],
  ])('stops at a torn end: %s', (_what, bytes, valid) => {
    const scan = scanJournal(bytes);
    expect(scan.records).toEqual(records.slice(0, valid));
    expect(scan.validBytes).toBe(valid * RECORD_BYTES);
    expect(scan.validAfterDamage).toBe(-1);
  });

  it('reports a valid record behind a damaged one (damage in the middle, not a torn end)', () => {
    const bytes = Buffer.from(whole);
    bytes[RECORD_BYTES + 5]! ^= 0x40;
    const scan = scanJournal(bytes);
    expect(scan.validBytes).toBe(RECORD_BYTES);
    expect(scan.validAfterDamage).toBe(2 * RECORD_BYTES);
  });
});
