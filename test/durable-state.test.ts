/**
 * The journal beside bets.csv, written by a real pool worker, and recovery at start: what
 * was stored, refused, finished and drawn survives a restart; torn tails made by hand are cut
 * (and logged with their size); contradictions stop the start with a clear RecoveryError and
 * leave the files untouched. Real files, real worker threads.
 */
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecoveryError, recoverDurableState } from '../server/storage/durable-state.js';
import { RECORD_BYTES, RecordKind, scanJournal } from '../server/storage/journal.js';
import { ProtectedStorage } from '../server/storage/protected-storage.js';
import { collectingLogger, numberedBatches, numberedRow, openDurable, type OpenDurable } from './helpers/durable.js';
import { killAll, makeTempDir, removeDir, spawnServer } from './helpers/processes.js';

let dir: string;
let files = 0;
const open: OpenDurable[] = [];

beforeAll(async () => {
  dir = await makeTempDir('durable-state');
});
afterAll(async () => {
  await killAll();
  await Promise.all(open.map((o) => o.close()));
  await removeDir(dir);
});

const rows = (a: number, from: number, to: number): string => {
  let s = '';
  for (let i = from; i < to; i++) s += numberedRow(a, i);
  return s;
};
const newPath = (): string => join(dir, `bets-${++files}.csv`);
const journalOf = (path: string): string => `${path}.journal`;

function start(path: string, agencies: number, fsync = true, workers = 1): OpenDurable {
  const o = openDurable(path, agencies, { fsync, workers });
  open.push(o);
  return o;
}

async function stop(o: OpenDurable): Promise<void> {
  await o.close();
  open.splice(open.indexOf(o), 1);
}

/** A recovery that must fail: its message, and proof that it changed no file. */
function refused(path: string, agencies: number): string {
  const sizes = [path, journalOf(path), `${path}.winners`].map((p) => (existsSync(p) ? statSync(p).size : -1));
  let error: unknown = null;
  try {
    recoverDurableState(path, agencies, collectingLogger().log);
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(RecoveryError);
  expect([path, journalOf(path), `${path}.winners`].map((p) => (existsSync(p) ? statSync(p).size : -1))).toEqual(sizes);
  return (error as Error).message;
}

/** Agency 1: bets 0..5 in two tasks; agency 2: 0..2, a refused batch 2..4, then 4..5. */
async function storeSample(o: OpenDurable): Promise<void> {
  const [r1, r2] = await Promise.all([
    o.pool.storeBatches(1, numberedBatches(1, 0, [3])),
    o.pool.storeBatches(
      2,
      numberedBatches(2, 0, [2, 2], (i) => i === 3),
    ),
  ]);
  expect(r1).toEqual([{ ok: true, stored: 3 }]);
  expect(r2![0]).toEqual({ ok: true, stored: 2 });
  expect(r2![1]).toMatchObject({ ok: false, index: 1 });
  expect(await o.pool.storeBatches(1, numberedBatches(1, 3, [2]))).toEqual([{ ok: true, stored: 2 }]);
  expect(await o.pool.storeBatches(2, numberedBatches(2, 4, [1]))).toEqual([{ ok: true, stored: 1 }]);
}
const SAMPLE_ROWS = (): string => rows(1, 0, 3) + rows(2, 0, 2) + rows(1, 3, 5) + rows(2, 4, 5);

describe('a new bets file', () => {
  it('gets a journal holding only its header, and the draw is pending', () => {
    const path = newPath();
    const { log, lines } = collectingLogger();
    const state = recoverDurableState(path, 3, log);
    expect(state).toEqual({ agencies: Array(3).fill({ next: 0, finished: false }), bets: 0, draw: null, cut: { bets: 0, journal: 0 } });
    expect(readFileSync(path, 'utf8')).toBe('');
    expect(scanJournal(readFileSync(journalOf(path))).records).toEqual([{ kind: RecordKind.HEADER, agencies: 3 }]);
    expect(lines).toEqual([
      {
        action: 'recuperacion',
        result: 'success',
        fields: expect.objectContaining({ apuestas: '0', agencias_terminadas: '0', sorteo: 'pending' }),
      },
    ]);
  });
});

describe.each([true, false])('with SERVER_FSYNC %s', (fsync) => {
  it('remembers what a worker stored, refused (consumed, no rows) and finished, across a restart', async () => {
    const path = newPath();
    const first = start(path, 2, fsync);
    await storeSample(first);
    await first.pool.recordFinished(1);
    await stop(first);
    expect(readFileSync(path, 'utf8')).toBe(SAMPLE_ROWS());
    const { log, lines } = collectingLogger();
    const state = recoverDurableState(path, 2, log);
    expect(state).toEqual({
      agencies: [
        { next: 5, finished: true },
        { next: 5, finished: false },
      ],
      bets: 8,
      draw: null,
      cut: { bets: 0, journal: 0 },
    });
    expect(lines.map((l) => l.fields)).toEqual([expect.objectContaining({ apuestas: '8', agencias_terminadas: '1', sorteo: 'pending' })]);
    const records = scanJournal(readFileSync(journalOf(path))).records;
    expect(records.map((r) => r.kind)).toEqual([1, 2, 2, 2, 2, 2, 3]);
    // The refused batch: consumed (2 bets), no rows, the file end unchanged.
    expect(records).toContainEqual({
      kind: RecordKind.BATCH,
      agency: 2,
      first: 2,
      count: 2,
      stored: 0,
      end: Buffer.byteLength(rows(1, 0, 3) + rows(2, 0, 2)),
    });
  });

  it('keeps the draw: a restart finds the winners without drawing again', async () => {
    const path = newPath();
    const o = start(path, 2, fsync);
    expect(await o.pool.storeBatches(1, numberedBatches(1, 0, [60, 40]))).toEqual([
      { ok: true, stored: 60 },
      { ok: true, stored: 40 },
    ]);
    expect(await o.pool.storeBatches(2, numberedBatches(2, 0, [10]))).toEqual([{ ok: true, stored: 10 }]);
    for (const a of [1, 2]) {
      await o.pool.recordFinished(a);
      o.counter.markFinished(a);
    }
    const result = await o.pool.draw();
    await stop(o);
    // Bets 7, 57 of agency 1 and 7 of agency 2 play 7574.
    const expected = [
      [1, ['10000007', '10000057']],
      [2, ['20000007']],
    ];
    expect(result.winners).toEqual(expected);
    expect(readFileSync(`${path}.winners`, 'utf8')).toBe('1,10000007\r\n1,10000057\r\n2,20000007\r\n');
    const { log, lines } = collectingLogger();
    const state = recoverDurableState(path, 2, log);
    expect(state.draw).toEqual({ winners: expected, scanned: 110 });
    expect(state.agencies.every((a) => a.finished)).toBe(true);
    expect(lines.at(-1)!.fields).toMatchObject({ apuestas: '110', agencias_terminadas: '2', sorteo: 'done' });
  });
});

describe('torn tails, made by hand, are cut and logged', () => {
  async function stored(): Promise<string> {
    const path = newPath();
    const o = start(path, 2);
    await storeSample(o);
    await stop(o);
    return path;
  }

  it('a half row after the last recorded one (a write cut by a crash)', async () => {
    const path = await stored();
    const tail = `${numberedRow(1, 5)}${numberedRow(1, 6).slice(0, 9)}`;
    appendFileSync(path, tail);
    const { log, lines } = collectingLogger();
    const state = recoverDurableState(path, 2, log);
    expect(state.cut).toEqual({ bets: Buffer.byteLength(tail), journal: 0 });
    expect(state.agencies.map((a) => a.next)).toEqual([5, 5]);
    expect(readFileSync(path, 'utf8')).toBe(SAMPLE_ROWS());
    expect(lines[0]).toMatchObject({
      action: 'recuperacion',
      result: 'success',
      fields: { bytes_cortados: String(Buffer.byteLength(tail)) },
    });
  });

  it('garbage after the last journal record', async () => {
    const path = await stored();
    const size = statSync(journalOf(path)).size;
    appendFileSync(journalOf(path), Buffer.from('\x02\x00 not a record, just noise from a torn write'));
    const state = recoverDurableState(path, 2, collectingLogger().log);
    expect(state.cut).toEqual({ bets: 0, journal: 45 });
    expect(statSync(journalOf(path)).size).toBe(size);
    expect(state.agencies.map((a) => a.next)).toEqual([5, 5]);
  });

  it('a journal cut mid-record and a bets file cut mid-row: both go back to the last whole record', async () => {
    const path = await stored();
    // Keep the header and the first two records (agency 1's 0..3, agency 2's 0..2) plus 10 bytes of the third.
    truncateSync(journalOf(path), 3 * RECORD_BYTES + 10);
    const keep = Buffer.byteLength(rows(1, 0, 3) + rows(2, 0, 2));
    truncateSync(path, keep + 20);
    const { log, lines } = collectingLogger();
    const state = recoverDurableState(path, 2, log);
    expect(state.cut).toEqual({ bets: 20, journal: 10 });
    expect(state.agencies.map((a) => a.next)).toEqual([3, 2]);
    expect(state.bets).toBe(5);
    expect(readFileSync(path, 'utf8')).toBe(rows(1, 0, 3) + rows(2, 0, 2));
    expect(lines.map((l) => l.fields.bytes_cortados ?? l.fields.apuestas)).toEqual(['20', '5']);
    // What was cut is what the clients send again: the next store continues there.
    const o = start(path, 2);
    expect(await o.pool.storeBatches(2, numberedBatches(2, 2, [3]))).toEqual([{ ok: true, stored: 3 }]);
    await stop(o);
    expect(recoverDurableState(path, 2, collectingLogger().log).agencies.map((a) => a.next)).toEqual([3, 5]);
  });

  it('drops a winners file that no DRAW record names (a draw cut by a crash runs again)', async () => {
    const path = await stored();
    writeFileSync(`${path}.winners`, '1,10000007\r\n');
    expect(recoverDurableState(path, 2, collectingLogger().log).draw).toBeNull();
    expect(existsSync(`${path}.winners`)).toBe(false);
  });
});

describe('contradictions stop the start with what is wrong and what to do, touching nothing', () => {
  async function drawn(): Promise<string> {
    const path = newPath();
    const o = start(path, 1);
    await o.pool.storeBatches(1, numberedBatches(1, 0, [20]));
    await o.pool.recordFinished(1);
    o.counter.markFinished(1);
    await o.pool.draw();
    await stop(o);
    return path;
  }
  async function stored(): Promise<string> {
    const path = newPath();
    const o = start(path, 2);
    await storeSample(o);
    await stop(o);
    return path;
  }

  it('rows in bets.csv and no journal', () => {
    const path = newPath();
    writeFileSync(path, rows(1, 0, 2));
    expect(refused(path, 2)).toMatch(/holds \d+ bytes of bets but .*\.journal is missing.*move the bets file/);
  });

  it('a journal recording more bytes than the bets file has (cut inside acknowledged rows)', async () => {
    const path = await stored();
    truncateSync(path, statSync(path).size - 7);
    expect(refused(path, 2)).toMatch(/has \d+ bytes but the journal records \d+ bytes of acknowledged bets.*restore/);
  });

  it('the bets file missing under its journal', async () => {
    const path = await stored();
    unlinkSync(path);
    expect(refused(path, 2)).toMatch(/has 0 bytes but the journal records/);
  });

  it('a row inside the recorded bytes that is not whole', async () => {
    const path = await stored();
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace('\r\n', 'xx'));
    expect(refused(path, 2)).toMatch(
      /does not match its journal: bytes 0\.\.\d+ should hold the 3 whole rows of agency 1's batch from bet 0, and hold 2 line ends/,
    );
  });

  it('a damaged record followed by good ones (not a torn end)', async () => {
    const path = await stored();
    const j = readFileSync(journalOf(path));
    j[2 * RECORD_BYTES + 9]! ^= 1;
    writeFileSync(journalOf(path), j);
    expect(refused(path, 2)).toMatch(/damaged record at byte 64 followed by a valid one at byte 96/);
  });

  it('another SERVER_AGENCIES than the journal was started with', async () => {
    const path = await stored();
    expect(refused(path, 3)).toMatch(/started for 2 agencies and SERVER_AGENCIES is 3; restart with SERVER_AGENCIES=2/);
  });

  it('a file that is not a journal', async () => {
    const path = await stored();
    writeFileSync(journalOf(path), 'agency,first,count\n1,0,3\n2,0,2\n3,4,5\n');
    expect(refused(path, 2)).toMatch(/does not start with a journal header/);
  });

  it('the winners file of a recorded draw missing, or changed', async () => {
    const path = await drawn();
    const winners = readFileSync(`${path}.winners`);
    writeFileSync(`${path}.winners`, Buffer.concat([winners, Buffer.from('1,12345\r\n')]));
    expect(refused(path, 1)).toMatch(/winners is not the file the draw wrote/);
    unlinkSync(`${path}.winners`);
    expect(refused(path, 1)).toMatch(/winners is missing, though the journal records the draw/);
  });
});

describe('a failed journal append', () => {
  it('cuts the rows back, so the file never holds rows without their record', async () => {
    const path = newPath();
    const o = start(path, 2);
    await storeSample(o);
    await stop(o);
    const before = readFileSync(path);
    const handle = ProtectedStorage.open(path, { fsync: true, next: [5, 5] });
    // A journal fd opened read-only: the record's write fails after the rows' write succeeded.
    closeSync(handle.journal!.fd);
    handle.journal!.fd = openSync(journalOf(path), 'r');
    const storage = new ProtectedStorage(handle, false);
    const row = numberedRow(1, 5);
    await expect(
      storage.storeRows(Buffer.from(row), [{ agency: 1, first: 5, count: 1, stored: 1, bytes: Buffer.byteLength(row) }]),
    ).rejects.toThrow(/EBADF/);
    expect(readFileSync(path)).toEqual(before);
    await expect(storage.storeRows(Buffer.from(row), [{ agency: 1, first: 5, count: 1, stored: 1, bytes: 3 }])).rejects.toThrow(RangeError);
    ProtectedStorage.close(handle);
    expect(recoverDurableState(path, 2, collectingLogger().log).cut).toEqual({ bets: 0, journal: 0 });
  });
});

describe('the server process on files it cannot trust', () => {
  it('exits 1 with one line saying what is wrong and what to do, before listening, touching nothing', async () => {
    const path = newPath();
    writeFileSync(path, rows(1, 0, 3));
    const server = spawnServer({ SERVER_PORT: '0', SERVER_AGENCIES: '2', SERVER_STORAGE_PATH: path });
    expect(await server.waitExit()).toEqual({ code: 1, signal: null });
    const lines = server.lines.filter((l) => l.includes('action: recuperacion'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /result: fail \| error: .*holds \d+ bytes of bets but .*journal is missing.*move the bets file and its \.journal and \.winners files away/,
    );
    expect(server.indexOf('listen')).toBe(-1);
    expect(readFileSync(path, 'utf8')).toBe(rows(1, 0, 3));
    expect(existsSync(journalOf(path))).toBe(false);
  });
});
