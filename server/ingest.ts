/**
 * Batch admission (main thread), protocol 2: each batch is judged by its idempotency key
 * (agency, first, count) against the agency's durable `next` (bets consumed, recovered from
 * the journal at start and moved by the workers as they record batches: AgencyProgress), and
 * answered with one BATCH_ACK per batch, in order. It never blocks: the pool does the work.
 *
 * The check and the record are one step. Admission of an agency's run happens on the main
 * thread, which is single-threaded, and the agency's runs (and its FINISHED) go one at a time
 * through `serialize`: a run is judged only once the agency's previous run has come back from
 * the pool with `next` moved. The worker writes the rows and the BATCH records of the run
 * under one hold of the write lock before the results return. So between the decision "this
 * batch continues at `next`" and its journal record no other batch of the agency — from this
 * session, a retry, or a session that took the agency over — can be admitted: a second copy
 * of a batch is judged against the `next` the first one moved, and is DUPLICATE.
 */
import { MalformedMessageError } from '../shared/protocol/errors.js';
import { AckStatus, MessageType, type BatchAckDTO, type BatchDTO } from '../shared/protocol/messages.js';
import type { BetPool } from './pool/bet-pool.js';
import type { StoreBatchResult } from './pool/tasks.js';
import type { AgencyProgress } from './sync/agency-progress.js';
import type { ProtectedNotificationCounter } from './sync/notification-counter.js';

/** What admission needs of the pool and of the finished counter. */
export type BatchStore = Pick<BetPool, 'storeBatches'>;
export type FinishedFlags = Pick<ProtectedNotificationCounter, 'hasFinished'>;

const MAX_U32 = 0xffff_ffff;

/** A batch judged without the pool, or one the pool must consume. */
type Verdict = { readonly ack: BatchAckDTO } | { readonly fresh: BatchDTO };

export class Ingest {
  readonly #store: BatchStore;
  readonly #finished: FinishedFlags;
  /** Per agency: bets consumed, stored or refused, as the journal records them. */
  readonly #progress: Pick<AgencyProgress, 'next'>;
  /** Per agency: the end of its chain of serialized operations. */
  readonly #tail = new Map<number, Promise<unknown>>();

  constructor(store: BatchStore, finished: FinishedFlags, progress: Pick<AgencyProgress, 'next'>) {
    this.#store = store;
    this.#finished = finished;
    this.#progress = progress;
  }

  /** The agency's `next`: the index of the first of its bets the server does not hold. */
  next(agency: number): number {
    return this.#progress.next(agency);
  }

  /**
   * Runs `op` once every operation serialized before it for `agency` has settled (FIFO per
   * agency; agencies do not wait for each other). A failure reaches only its own caller.
   */
  serialize<T>(agency: number, op: () => Promise<T>): Promise<T> {
    const run = (this.#tail.get(agency) ?? Promise.resolve()).then(op);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#tail.set(agency, tail);
    void tail.then(() => {
      if (this.#tail.get(agency) === tail) this.#tail.delete(agency);
    });
    return run;
  }

  /** Settles once nothing of `agency` is in the pool, so that next(agency) is final for now. */
  settled(agency: number): Promise<void> {
    return this.serialize(agency, async () => {});
  }

  /** Judges and stores one run of an agency's batches; one BATCH_ACK per batch, in order. */
  admit(agency: number, batches: readonly BatchDTO[]): Promise<BatchAckDTO[]> {
    return this.serialize(agency, () => this.#admit(agency, batches));
  }

  async #admit(agency: number, batches: readonly BatchDTO[]): Promise<BatchAckDTO[]> {
    // Every fresh batch is consumed by the pool (stored, or refused and recorded), or the task
    // fails as a whole and no ack leaves: so later batches of the run are judged against the
    // `next` the earlier ones will have moved.
    let next = this.next(agency);
    const verdicts: Verdict[] = batches.map((batch) => {
      const { first, count } = batch;
      // `next` is a u32 on the wire and in the journal: a batch past it is no agency's stream.
      if (first + count > MAX_U32) throw new MalformedMessageError(`BATCH from bet ${first} of ${count} bets runs past bet ${MAX_U32}`);
      if (first + count <= next) return { ack: ack(first, { status: AckStatus.DUPLICATE, count }) };
      if (this.#finished.hasFinished(agency)) {
        const reason = `agency ${agency} finished this draw; start a new draw with a fresh bets volume`;
        return { ack: ack(first, { status: AckStatus.REJECTED, index: 0, reason }) };
      }
      if (first !== next) return { ack: ack(first, { status: AckStatus.OUT_OF_ORDER, next }) };
      next += count;
      return { fresh: batch };
    });
    const fresh = verdicts.flatMap((v) => ('fresh' in v ? [v.fresh] : []));
    const results = fresh.length > 0 ? await this.#store.storeBatches(agency, fresh) : [];
    if (this.next(agency) !== next)
      throw new Error(`agency ${agency}: the journal records ${this.next(agency)} bets consumed, admission expected ${next}`);
    let i = 0;
    return verdicts.map((v) => ('ack' in v ? v.ack : consumed(v.fresh, results[i++]!)));
  }
}

type AckBody =
  | { status: typeof AckStatus.STORED | typeof AckStatus.DUPLICATE; count: number }
  | { status: typeof AckStatus.REJECTED; index: number; reason: string }
  | { status: typeof AckStatus.OUT_OF_ORDER; next: number };

function ack(first: number, body: AckBody): BatchAckDTO {
  return { type: MessageType.BATCH_ACK, first, ...body };
}

function consumed(batch: BatchDTO, result: StoreBatchResult): BatchAckDTO {
  if (!result.ok) return ack(batch.first, { status: AckStatus.REJECTED, index: result.index, reason: result.reason });
  return ack(batch.first, { status: AckStatus.STORED, count: result.stored });
}
