/**
 * Recovery at start: reads the journal beside the bets file, cuts what a crash left half
 * written, checks the two files against each other, and hands back what the server must
 * remember: per agency the bets consumed (`next`) and FINISHED, and the draw's result.
 * Runs on the main thread before the pool exists, so plain blocking I/O is right here.
 * A contradiction that cannot be repaired without guessing throws a RecoveryError whose
 * message says what is wrong and what to do; the server then refuses to start.
 */
import { closeSync, existsSync, fdatasyncSync, ftruncateSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { Logger } from '../../shared/logging/logger.js';
import { crc32 } from '../../shared/util/crc32.js';
import { writeAll } from './bets-file.js';
import { RECORD_BYTES, RecordKind, encodeRecords, scanJournal, type BatchRecord, type DrawRecord, type JournalRecord } from './journal.js';
import { durablePaths } from './storage-handle.js';
import { checkRows } from './row-check.js';
import { decodeWinners, fsyncDirectory, readWinnersFile, type Winners } from './winners-file.js';

/** The files on disk cannot be trusted as they are; nothing was changed. */
export class RecoveryError extends Error {
  constructor(problem: string, todo: string) {
    super(`${problem}; ${todo}`);
    this.name = 'RecoveryError';
  }
}

const FRESH_DRAW = 'or, to start a new draw, move the bets file and its .journal and .winners files away';

export interface AgencyState {
  /** Bets consumed (stored or refused): the index of the next bet expected. */
  next: number;
  finished: boolean;
}

export interface RecoveredState {
  /** Index agency - 1. */
  agencies: AgencyState[];
  /** Rows in the bets file. */
  bets: number;
  draw: { winners: Winners; scanned: number } | null;
  /** Bytes cut from the end of each file (a torn or unrecorded tail). */
  cut: { bets: number; journal: number };
}

interface Replayed {
  agencies: AgencyState[];
  bets: number;
  /** Where the last recorded rows end in the bets file. */
  end: number;
  batches: BatchRecord[];
  drawRecord: DrawRecord | null;
}

/** Replays the records into per-agency state; throws on any record that contradicts those before it. */
function replay(records: readonly JournalRecord[], agencies: number, journal: string): Replayed {
  const state: Replayed = {
    agencies: Array.from({ length: agencies }, () => ({ next: 0, finished: false })),
    bets: 0,
    end: 0,
    batches: [],
    drawRecord: null,
  };
  const bad = (i: number, what: string): RecoveryError =>
    new RecoveryError(
      `${journal}: record ${i} (byte ${i * RECORD_BYTES}) ${what}: the journal is not one this server wrote`,
      `restore the files from a backup, ${FRESH_DRAW}`,
    );
  records.forEach((rec, i) => {
    if (i === 0 || rec.kind === RecordKind.HEADER) {
      if (i !== 0 || rec.kind !== RecordKind.HEADER) throw bad(i, 'is not where a header belongs');
      if (rec.agencies !== agencies)
        throw new RecoveryError(
          `${journal} was started for ${rec.agencies} agencies and SERVER_AGENCIES is ${agencies}`,
          `restart with SERVER_AGENCIES=${rec.agencies} to finish that draw, ${FRESH_DRAW}`,
        );
      return;
    }
    if (state.drawRecord !== null) throw bad(i, 'follows the DRAW record');
    if (rec.kind === RecordKind.DRAW) {
      if (!state.agencies.every((a) => a.finished)) throw bad(i, 'is a DRAW before every agency finished');
      if (rec.end !== state.end) throw bad(i, `is a DRAW over ${rec.end} bytes of bets, not the ${state.end} recorded`);
      state.drawRecord = rec;
      return;
    }
    const a = state.agencies[rec.agency - 1];
    if (a === undefined) throw bad(i, `names agency ${rec.agency}, outside 1..${agencies}`);
    if (rec.kind === RecordKind.FINISHED) {
      a.finished = true;
      return;
    }
    if (a.finished) throw bad(i, `is a batch of agency ${rec.agency} after its FINISHED`);
    if (rec.first !== a.next) throw bad(i, `is agency ${rec.agency}'s batch from bet ${rec.first}, but ${a.next} bets were consumed`);
    if (rec.stored !== 0 && rec.stored !== rec.count) throw bad(i, `stores ${rec.stored} rows of a ${rec.count}-bet batch`);
    if (rec.end < state.end || (rec.stored === 0) !== (rec.end === state.end)) throw bad(i, `ends at byte ${rec.end} after ${state.end}`);
    a.next += rec.count;
    state.bets += rec.stored;
    state.end = rec.end;
    state.batches.push(rec);
  });
  return state;
}

/** A new journal holding only its header, flushed with its directory entry. */
function createJournal(path: string, agencies: number): void {
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, encodeRecords([{ kind: RecordKind.HEADER, agencies }]));
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDirectory(path);
}

function cutTo(path: string, size: number): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, size);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

/** The draw's winners, checked against the DRAW record; throws when the file is missing or altered. */
function recoveredWinners(path: string, rec: { winners: number; winnersCrc: number; scanned: number }): Winners {
  const bytes = readWinnersFile(path);
  const winners = bytes === null || crc32(bytes) !== rec.winnersCrc ? null : decodeWinners(bytes);
  if (winners === null || winners.reduce((n, [, d]) => n + d.length, 0) !== rec.winners)
    throw new RecoveryError(
      `${path} is ${bytes === null ? 'missing' : 'not the file the draw wrote (its checksum differs)'}, though the journal records the draw`,
      `restore it from a backup, ${FRESH_DRAW}`,
    );
  return winners;
}

/**
 * Brings the bets file and its journal back to the last consistent point and returns the
 * state they hold. Creates the journal for a new (absent or empty) bets file.
 */
export function recoverDurableState(betsPath: string, agencies: number, log: Logger): RecoveredState {
  const paths = durablePaths(betsPath);
  const betsSize = sizeOf(betsPath);
  const journalBytes = existsSync(paths.journal) ? readFileSync(paths.journal) : null;
  if (journalBytes === null || (journalBytes.length < RECORD_BYTES && betsSize === 0)) {
    // No journal, or one torn while it was being created: fine only while no bet was stored.
    if (betsSize > 0)
      throw new RecoveryError(
        `${betsPath} holds ${betsSize} bytes of bets but ${paths.journal} is ${journalBytes === null ? 'missing' : 'cut short'}, so which of them were acknowledged is unknown`,
        `restore the journal from a backup, ${FRESH_DRAW}`,
      );
    createJournal(paths.journal, agencies);
    closeSync(openSync(betsPath, 'a'));
    rmSync(paths.winners, { force: true });
    return logged(log, { agencies: replay([], agencies, paths.journal).agencies, bets: 0, draw: null, cut: { bets: 0, journal: 0 } });
  }
  const scan = scanJournal(journalBytes);
  if (scan.records.length === 0)
    throw new RecoveryError(`${paths.journal} does not start with a journal header`, `check SERVER_STORAGE_PATH, ${FRESH_DRAW}`);
  if (scan.validAfterDamage >= 0)
    throw new RecoveryError(
      `${paths.journal} has a damaged record at byte ${scan.validBytes} followed by a valid one at byte ${scan.validAfterDamage}: damage in the middle, not a torn end`,
      `restore the files from a backup, ${FRESH_DRAW}`,
    );
  const state = replay(scan.records, agencies, paths.journal);
  if (betsSize < state.end)
    throw new RecoveryError(
      `${betsPath} has ${betsSize} bytes but the journal records ${state.end} bytes of acknowledged bets: the file was cut or replaced after the server wrote it`,
      `restore ${betsPath} from a backup, ${FRESH_DRAW}`,
    );
  const rows = checkRows(betsPath, state.batches);
  if (rows !== null)
    throw new RecoveryError(`${betsPath} does not match its journal: ${rows}`, `restore the files from a backup, ${FRESH_DRAW}`);
  const cut = { bets: betsSize - state.end, journal: journalBytes.length - scan.validBytes };
  if (cut.journal > 0) cutTo(paths.journal, scan.validBytes);
  if (cut.bets > 0) cutTo(betsPath, state.end);
  let draw: RecoveredState['draw'] = null;
  if (state.drawRecord !== null) draw = { winners: recoveredWinners(paths.winners, state.drawRecord), scanned: state.drawRecord.scanned };
  // A winners file with no DRAW record is a draw that crashed before its record: it runs again.
  else rmSync(paths.winners, { force: true });
  return logged(log, { agencies: state.agencies, bets: state.bets, draw, cut });
}

function logged(log: Logger, state: RecoveredState): RecoveredState {
  if (state.cut.bets > 0 || state.cut.journal > 0) {
    log.warn({
      action: 'recuperacion',
      result: 'success',
      bytes_cortados: state.cut.bets,
      bytes_cortados_journal: state.cut.journal,
      detalle: 'rows or records of batches never acknowledged (a write cut by a crash) were removed; their clients send them again',
    });
  }
  log.info({
    action: 'recuperacion',
    result: 'success',
    apuestas: state.bets,
    agencias_terminadas: state.agencies.filter((a) => a.finished).length,
    sorteo: state.draw === null ? 'pending' : 'done',
  });
  return state;
}
