/**
 * The storage seam the server talks to, whichever backend is behind it
 * (`SERVER_STORAGE=file|postgres`, server/storage/open-storage.ts): the file backend
 * (server/storage/file-backend.ts: the bets file, its journal, the Atomics lock and counter,
 * the pool) for one server, and the PostgreSQL backend (server/storage/postgres/) for several
 * sharing a database. The rest of the server (ingest, draw, registry, handlers) sees only this.
 * The admission rule, the epochs and the draw follow docs/protocol.md: a batch's idempotency
 * key is (agency, first, count); `next` is the agency's durable position in its stream of bets.
 *
 * What a caller may rely on, with any backend:
 * - an outcome is returned only once it is durable (for PostgreSQL: after COMMIT);
 * - outcomes come back per run and per batch, in the order given;
 * - an operation that fails (StorageUnavailableError) may be retried as it is: a retry of a
 *   batch that did commit is answered DUPLICATE, never stored twice.
 */

/** What became of one batch. Values are plain strings: they cross thread boundaries as they are. */
export const Admission = {
  /** first == next: stored, `next` moved by count. */
  STORED: 'stored',
  /** first + count <= next: already stored or consumed; nothing touched. */
  DUPLICATE: 'duplicate',
  /** A bad bet (consumed: `next` moved by count, 0 rows) or the agency had finished (not consumed). */
  REJECTED: 'rejected',
  /** A gap or an overlap: nothing stored; the client resumes from `next`. */
  OUT_OF_ORDER: 'out_of_order',
  /** The run's epoch is no longer the agency's: a newer session took it over; nothing stored. */
  REPLACED: 'replaced',
} as const;
export type Admission = (typeof Admission)[keyof typeof Admission];

/** One BATCH as it came off the wire: `bets` still encoded (shared/protocol/bet-codec.ts). */
export interface BatchIn {
  readonly first: number;
  readonly count: number;
  readonly bets: Buffer;
}

/** Consecutive batches of one agency's session, tagged with the epoch its claim returned. */
export interface RunIn {
  readonly agency: number;
  readonly epoch: number;
  readonly batches: readonly BatchIn[];
}

export type BatchOutcome =
  | { readonly status: typeof Admission.STORED; readonly first: number; readonly count: number }
  | { readonly status: typeof Admission.DUPLICATE; readonly first: number; readonly count: number }
  | {
      readonly status: typeof Admission.REJECTED;
      readonly first: number;
      readonly index: number;
      readonly reason: string;
      /** True when `next` moved past the batch (a bad bet); false when the agency had finished. */
      readonly consumed: boolean;
    }
  | { readonly status: typeof Admission.OUT_OF_ORDER; readonly first: number; readonly next: number }
  | { readonly status: typeof Admission.REPLACED; readonly first: number };

/** Why a batch of an agency that sent FINISHED is refused (both backends word it alike). */
export function finishedReason(agency: number): string {
  return `agency ${agency} finished this draw; start a new draw with a fresh bets volume`;
}

/** What WELCOME needs, and the epoch that fences the session's writes. */
export interface AgencyClaim {
  readonly agency: number;
  /** Grows with every claim of the agency, on any server; the newest claim owns the agency. */
  readonly epoch: number;
  readonly next: number;
  readonly finished: boolean;
}

export type FinishMark =
  | {
      readonly replaced: false;
      /** This call recorded the agency as finished (false for a repeated FINISHED). */
      readonly counted: boolean;
      readonly finished: number;
      readonly expected: number;
      /** Every agency has finished: call draw() (it runs at most once across all servers). */
      readonly allFinished: boolean;
      /** This call completed the set: exactly one call across all servers sees true. */
      readonly completed: boolean;
    }
  | { readonly replaced: true };

export interface DrawSummary {
  /** Bets stored when the draw ran, and winners found among them. */
  readonly bets: number;
  readonly winners: number;
  /** The server that ran it. */
  readonly drawnBy: string;
  /** This server ran the draw, in this call or in the call of this server it joined (false: another server's). */
  readonly ranHere: boolean;
}

export interface Progress {
  readonly finished: number;
  readonly expected: number;
  readonly drawn: boolean;
}

export interface StorageBackend {
  readonly kind: 'file' | 'postgres';
  /** How many agencies take part (1..agencies). */
  readonly agencies: number;
  /** Takes over `agency` for a newly authenticated session (the takeover rule): its epoch and resume point. */
  claim(agency: number): Promise<AgencyClaim>;
  /** The session of `epoch` ended; a no-op when a newer claim exists. */
  release(agency: number, epoch: number): Promise<void>;
  /** Hears that a session of `agency` older than `epoch` was taken over (here or on another server). */
  onReplaced(listener: (agency: number, epoch: number) => void): () => void;
  /** Admits and stores the runs as one group commit; one outcome per batch, per run, in order. */
  storeRuns(runs: readonly RunIn[]): Promise<BatchOutcome[][]>;
  /** Records FINISHED (once per agency, however often it is sent). */
  markFinished(agency: number, epoch: number): Promise<FinishMark>;
  progress(): Promise<Progress>;
  /** Runs the draw if nobody has, or waits for the one running; throws DrawTooEarlyError before every agency finished. */
  draw(): Promise<DrawSummary>;
  /** The agency's winning documents, or null while the draw has not happened. */
  winners(agency: number): Promise<string[] | null>;
  /** Resolves when the draw is done (on any server); rejects when the backend closes or a draw attempt here failed. */
  waitForDraw(): Promise<void>;
  /** Hears every draw() of this backend that ends with a result (once per draw run or found done), whoever called it. */
  onDrawn(listener: (summary: DrawSummary) => void): () => void;
  /**
   * Idempotent. Work in flight may finish for `deadlineMs` (default: as long as it takes);
   * past it, it is abandoned: nothing unacknowledged is stored, nothing acknowledged is lost.
   * Logs what it closed (`close_storage`, ...).
   */
  close(opts?: CloseOptions): Promise<void>;
}

export interface CloseOptions {
  readonly deadlineMs?: number;
}

/** The backend cannot reach its store right now; the operation may be retried as it is. */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

/** draw() before every agency sent FINISHED (the one class for both backends; thrown on a pool worker too). */
export class DrawTooEarlyError extends Error {
  constructor(finished: number, expected: number) {
    super(`the draw needs every agency's FINISHED: ${finished} of ${expected} so far`);
    this.name = 'DrawTooEarlyError';
  }
}

/** An agency outside 1..agencies. */
export class UnknownAgencyError extends RangeError {
  constructor(agency: number, agencies: number) {
    super(`agency ${agency} is unknown: this lottery takes agencies 1 to ${agencies}`);
    this.name = 'UnknownAgencyError';
  }
}

/** The server was told to stop while open() waited for its store: nothing was stored, nothing failed. */
export class StartStoppedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartStoppedError';
  }
}

/** The store was set up for another lottery (e.g. another number of agencies): fix the configuration. */
export class StorageConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageConfigError';
  }
}

/** The storage closed while the call was waiting. */
export class StorageClosedError extends Error {
  constructor(what: string) {
    super(`${what}: the storage is closed`);
    this.name = 'StorageClosedError';
  }
}
