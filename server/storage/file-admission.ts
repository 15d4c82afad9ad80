/**
 * The file backend's admission rule (protocol 2), pure: each batch of a run is judged by its
 * idempotency key (agency, first, count) against the agency's durable `next`, in order. A
 * batch the pool must consume is "fresh"; the next batch of the run is then judged against
 * `next + count`, since the pool consumes every fresh batch (stored, or refused and recorded)
 * or fails the task as a whole. file-backend.ts runs it inside the agency's serialized chain.
 */
import type { StoreBatchResult } from '../pool/tasks.js';
import { Admission, finishedReason, type BatchIn, type BatchOutcome, type RunIn } from './backend.js';

export interface AdmittedRun {
  /** Per batch: its outcome already, or the index of its result among the fresh ones. */
  readonly verdicts: ReadonlyArray<BatchOutcome | { readonly fresh: number; readonly batch: BatchIn }>;
  readonly fresh: BatchIn[];
  /** `next` once the fresh batches are consumed. */
  readonly next: number;
}

export function admitRun(run: RunIn, next: number, finished: boolean): AdmittedRun {
  const fresh: BatchIn[] = [];
  const verdicts = run.batches.map((batch): AdmittedRun['verdicts'][number] => {
    const { first, count } = batch;
    if (first + count <= next) return { status: Admission.DUPLICATE, first, count };
    if (finished) return { status: Admission.REJECTED, first, index: 0, reason: finishedReason(run.agency), consumed: false };
    if (first !== next) return { status: Admission.OUT_OF_ORDER, first, next };
    next += count;
    fresh.push(batch);
    return { fresh: fresh.length - 1, batch };
  });
  return { verdicts, fresh, next };
}

/** The outcomes of the run, in order, once the pool returned one result per fresh batch. */
export function outcomesOf(admitted: AdmittedRun, results: readonly StoreBatchResult[]): BatchOutcome[] {
  return admitted.verdicts.map((v): BatchOutcome => {
    if (!('fresh' in v)) return v;
    const result = results[v.fresh];
    const { first } = v.batch;
    if (result === undefined) throw new Error(`the pool returned no result for the batch from bet ${first}`);
    if (!result.ok) return { status: Admission.REJECTED, first, index: result.index, reason: result.reason, consumed: true };
    return { status: Admission.STORED, first, count: result.stored };
  });
}
