/**
 * The admission rule of protocol v2, pure: given an agency's durable state, read under its row
 * lock, what becomes of each batch of a run and what has to be written. No I/O here: store.ts
 * reads the state and writes the plan inside one transaction.
 */
import type { Bet } from '../../../shared/domain/bet.js';
import { decodeBets } from '../../../shared/protocol/bet-codec.js';
import { Admission, finishedReason, type BatchIn, type BatchOutcome, type RunIn } from '../backend.js';

/** A batch decoded and validated before the transaction (no lock is held while decoding). */
export type DecodedBatch =
  | { readonly first: number; readonly count: number; readonly ok: true; readonly bets: readonly Bet[] }
  | { readonly first: number; readonly count: number; readonly ok: false; readonly index: number; readonly reason: string };

export interface DecodedRun {
  readonly agency: number;
  readonly epoch: number;
  readonly batches: readonly DecodedBatch[];
}

/** The agency's row as the transaction holds it. */
export interface AgencyState {
  next: number;
  readonly epoch: number;
  readonly finished: boolean;
}

/** A batch to record: `bets` is empty for a batch consumed by a bad bet. */
export interface BatchWrite {
  readonly agency: number;
  readonly first: number;
  readonly count: number;
  readonly bets: readonly Bet[];
}

const MAX_FIRST = 0xffffffff;

const MAX_COUNT = 0xffff;

/** Throws RangeError for a batch the codec could not have produced (a caller's bug), before it joins a group. */
export function checkRun(run: RunIn): void {
  for (const { first, count } of run.batches) {
    if (!Number.isInteger(first) || first < 0 || first > MAX_FIRST) throw new RangeError(`batch first ${first} is not a u32`);
    if (!Number.isInteger(count) || count < 0 || count > MAX_COUNT) throw new RangeError(`batch count ${count} is not a u16`);
  }
}

export function decodeBatch(agency: number, batch: BatchIn): DecodedBatch {
  const { first, count } = batch;
  if (count === 0) return { first, count, ok: false, index: 0, reason: 'a batch must hold at least one bet (count 0)' };
  const decoded = decodeBets(batch.bets, count, agency);
  return decoded.ok
    ? { first, count, ok: true, bets: decoded.bets }
    : { first, count, ok: false, index: decoded.index, reason: decoded.reason };
}

export function decodeRun(run: RunIn): DecodedRun {
  return { agency: run.agency, epoch: run.epoch, batches: run.batches.map((b) => decodeBatch(run.agency, b)) };
}

/**
 * Decides every batch of `run` in order against `state`, advancing `state.next` for what it
 * admits, and appends the records to `writes`. A run whose epoch is not the agency's was
 * taken over: nothing of it is stored.
 */
export function admitRun(run: DecodedRun, state: AgencyState, writes: BatchWrite[]): BatchOutcome[] {
  const { agency } = run;
  if (run.epoch !== state.epoch) return run.batches.map((b) => ({ status: Admission.REPLACED, first: b.first }));
  return run.batches.map((b): BatchOutcome => {
    const { first, count } = b;
    // count 0 would record a key the agency's next batch needs: refused, never recorded.
    if (count === 0 && !b.ok) return { status: Admission.REJECTED, first, index: b.index, reason: b.reason, consumed: false };
    if (first + count <= state.next) return { status: Admission.DUPLICATE, first, count };
    // The order of docs/protocol.md's table, as the file backend has it (file-admission.ts).
    if (state.finished) return { status: Admission.REJECTED, first, index: 0, reason: finishedReason(agency), consumed: false };
    if (first !== state.next) return { status: Admission.OUT_OF_ORDER, first, next: state.next };
    state.next += count;
    writes.push({ agency, first, count, bets: b.ok ? b.bets : [] });
    return b.ok
      ? { status: Admission.STORED, first, count }
      : { status: Admission.REJECTED, first, index: b.index, reason: b.reason, consumed: true };
  });
}
