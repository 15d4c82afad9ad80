/**
 * Batch admission as the session sees it (main thread): a run of BATCH frames goes to the
 * storage backend as one run, tagged with the session's epoch, and comes back as one
 * BATCH_ACK per batch, in order — or as "replaced" when a newer session of the agency (on
 * this server or another) claimed it first: then nothing of the run was stored.
 *
 * The rule itself (DUPLICATE / REJECTED / OUT_OF_ORDER / fresh against the agency's durable
 * `next`, the key checked and recorded in one step) is the backend's: the file backend's in
 * server/storage/file-admission.ts under its per-agency chain, PostgreSQL's in
 * server/storage/postgres/admission.ts under the agency's row lock. Neither acknowledges a
 * batch before it is durable.
 */
import { MalformedMessageError } from '../shared/protocol/errors.js';
import { AckStatus, MessageType, type BatchAckDTO, type BatchDTO } from '../shared/protocol/messages.js';
import { Admission, type BatchOutcome, type StorageBackend } from './storage/backend.js';

/** What admission needs of the backend. */
export type BatchStore = Pick<StorageBackend, 'storeRuns'>;

export type Admitted = { readonly replaced: false; readonly acks: BatchAckDTO[] } | { readonly replaced: true };

const MAX_U32 = 0xffff_ffff;

export class Ingest {
  readonly #store: BatchStore;

  constructor(store: BatchStore) {
    this.#store = store;
  }

  /** Judges and stores one run of an agency's batches; one BATCH_ACK per batch, in order. */
  async admit(agency: number, epoch: number, batches: readonly BatchDTO[]): Promise<Admitted> {
    for (const { first, count } of batches) {
      // `next` is a u32 on the wire and in the journal: a batch past it is no agency's stream.
      if (first + count > MAX_U32) throw new MalformedMessageError(`BATCH from bet ${first} of ${count} bets runs past bet ${MAX_U32}`);
    }
    const [outcomes] = await this.#store.storeRuns([{ agency, epoch, batches }]);
    if (outcomes === undefined || outcomes.length !== batches.length)
      throw new Error(`the storage answered ${outcomes?.length ?? 0} outcomes for ${batches.length} batches`);
    // A run carries one epoch: it is replaced whole or not at all.
    if (outcomes.some((o) => o.status === Admission.REPLACED)) return { replaced: true };
    return { replaced: false, acks: outcomes.map(toAck) };
  }
}

function toAck(o: BatchOutcome): BatchAckDTO {
  const type = MessageType.BATCH_ACK;
  switch (o.status) {
    case Admission.STORED:
      return { type, first: o.first, status: AckStatus.STORED, count: o.count };
    case Admission.DUPLICATE:
      return { type, first: o.first, status: AckStatus.DUPLICATE, count: o.count };
    case Admission.REJECTED:
      return { type, first: o.first, status: AckStatus.REJECTED, index: o.index, reason: o.reason };
    case Admission.OUT_OF_ORDER:
      return { type, first: o.first, status: AckStatus.OUT_OF_ORDER, next: o.next };
    case Admission.REPLACED:
      throw new Error('a replaced batch has no ack');
  }
}
