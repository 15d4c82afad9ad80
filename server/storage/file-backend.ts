/**
 * StorageBackend over the course's bets file, for one server: recovery at open (the journal
 * beside the bets file, server/storage/durable-state.ts), the pool that writes rows and
 * journal records under the Atomics write lock (server/pool/), the finished counter
 * (Atomics, server/sync/notification-counter.ts) and the winners file. Nothing here is shared
 * with another process: the concurrency control is the lock between the pool's threads, and
 * on the main thread one operation per agency at a time (`#op`).
 *
 * The check and the record are one step. An agency's runs, its claims and its FINISHED go
 * one at a time through `#op`: a run is judged (file-admission.ts) only once the
 * agency's previous run has come back from the pool with `next` moved, and the worker writes
 * the rows and the BATCH records of the run (at the write's turn in the commit order) before
 * the results return. So between the decision "this batch continues at `next`" and its journal
 * record no other batch of the agency — a retry, or a session that took the agency over —
 * can be admitted: a second copy is judged against the `next` the first one moved.
 *
 * Epochs live in memory (a restart ends every session anyway): a claim bumps the agency's
 * epoch behind its run in the pool, and a run or FINISHED of an older epoch stores nothing.
 */
import type { Logger } from '../../shared/logging/logger.js';
import { KeyedChain, deferred, settlesWithin, type Deferred } from '../../shared/util/async.js';
import { BetPool } from '../pool/bet-pool.js';
import { AgencyProgress } from '../sync/agency-progress.js';
import { ProtectedNotificationCounter } from '../sync/notification-counter.js';
import {
  Admission,
  StorageClosedError,
  UnknownAgencyError,
  type AgencyClaim,
  type BatchOutcome,
  type CloseOptions,
  type DrawSummary,
  type FinishMark,
  type Progress,
  type RunIn,
  type StorageBackend,
} from './backend.js';
import { recoverDurableState } from './durable-state.js';
import { admitRun, outcomesOf } from './file-admission.js';
import { ProtectedStorage } from './protected-storage.js';
import type { StorageHandle } from './storage-handle.js';

/** What the backend needs of the pool (tests may stand between them). */
export type FilePool = Pick<BetPool, 'storeBatches' | 'draw' | 'recordFinished'>;

export interface FileBackendOptions {
  readonly path: string;
  readonly agencies: number;
  /** SERVER_FSYNC: rows and journal records are flushed before a batch is acknowledged. */
  readonly fsync: boolean;
  /** Pool workers (0: inline, benchmarks only). */
  readonly workers: number;
  readonly log: Logger;
  /** The workers' own loggers (DEBUG lines per bet). */
  readonly logLevel?: string;
  readonly logFormat?: string;
  /** Names this server in the draw's summary. */
  readonly serverId?: string;
  readonly onFsync?: (seconds: number) => void;
  /** Stands between the backend and its pool, e.g. to watch or hold its calls (tests). */
  readonly wrapPool?: (pool: BetPool) => FilePool;
}

type Listener<A extends unknown[]> = (...args: A) => void;

export class FileBackend implements StorageBackend {
  readonly kind = 'file' as const;
  readonly agencies: number;
  /** The pool itself (tests spy on it). */
  readonly pool: BetPool;
  readonly #pool: FilePool;
  readonly #storage: StorageHandle;
  readonly #counter: ProtectedNotificationCounter;
  readonly #progress: AgencyProgress;
  readonly #log: Logger;
  readonly #serverId: string;
  /** Per agency (index agency - 1): the newest claim's epoch; 0 before any. */
  readonly #epochs: number[];
  /** Per agency: its operations, one at a time. */
  readonly #ops = new KeyedChain<number>();
  readonly #replacedListeners = new Set<Listener<[number, number]>>();
  readonly #drawnListeners = new Set<Listener<[DrawSummary]>>();
  #winners: Map<number, string[]> | null = null;
  #summary: DrawSummary | null = null;
  #drawing: Promise<DrawSummary> | null = null;
  #waiters: Deferred<void> | null = null;
  #closing: Promise<void> | null = null;

  /** Recovers the files (RecoveryError when they cannot be trusted; nothing is changed then), opens them and starts the pool. */
  static open(opts: FileBackendOptions): FileBackend {
    return new FileBackend(opts);
  }

  private constructor(opts: FileBackendOptions) {
    this.agencies = opts.agencies;
    this.#log = opts.log;
    this.#serverId = opts.serverId ?? 'file';
    this.#epochs = Array<number>(opts.agencies).fill(0);
    const recovered = recoverDurableState(opts.path, opts.agencies, opts.log);
    this.#storage = ProtectedStorage.open(opts.path, { fsync: opts.fsync, next: recovered.agencies.map((a) => a.next) });
    const counterSab = ProtectedNotificationCounter.allocate(opts.agencies);
    this.#counter = new ProtectedNotificationCounter(counterSab);
    recovered.agencies.forEach((a, i) => {
      if (a.finished) this.#counter.markFinished(i + 1);
    });
    this.#progress = new AgencyProgress(this.#storage.progress!);
    if (recovered.draw !== null) {
      this.#winners = new Map(recovered.draw.winners);
      const winners = recovered.draw.winners.reduce((n, [, docs]) => n + docs.length, 0);
      this.#summary = { bets: recovered.draw.scanned, winners, drawnBy: this.#serverId, ranHere: false };
    }
    const init = {
      storage: this.#storage,
      counter: counterSab,
      logLevel: opts.logLevel ?? 'info',
      logFormat: opts.logFormat ?? 'text',
    };
    this.pool = new BetPool({ workers: opts.workers, init, ...(opts.onFsync ? { onFsync: opts.onFsync } : {}) });
    this.#pool = opts.wrapPool?.(this.pool) ?? this.pool;
  }

  /** The agency's `next` as the journal has it (tests and diagnostics). */
  next(agency: number): number {
    return this.#progress.next(agency);
  }

  claim(agency: number): Promise<AgencyClaim> {
    return this.#op(agency, 'claiming an agency', async () => {
      const epoch = ++this.#epochs[agency - 1]!;
      if (epoch > 1) for (const l of this.#replacedListeners) l(agency, epoch);
      return { agency, epoch, next: this.#progress.next(agency), finished: this.#counter.hasFinished(agency) };
    });
  }

  /** Nothing durable to clear: the epochs live in memory. */
  async release(): Promise<void> {}

  onReplaced(listener: (agency: number, epoch: number) => void): () => void {
    this.#replacedListeners.add(listener);
    return () => this.#replacedListeners.delete(listener);
  }

  onDrawn(listener: (summary: DrawSummary) => void): () => void {
    this.#drawnListeners.add(listener);
    return () => this.#drawnListeners.delete(listener);
  }

  storeRuns(runs: readonly RunIn[]): Promise<BatchOutcome[][]> {
    return Promise.all(runs.map((run) => this.#op(run.agency, 'storing batches', () => this.#store(run))));
  }

  async #store(run: RunIn): Promise<BatchOutcome[]> {
    const { agency } = run;
    if (run.epoch !== this.#epochs[agency - 1]) return run.batches.map((b) => ({ status: Admission.REPLACED, first: b.first }));
    // Every fresh batch is consumed by the pool (stored, or refused and recorded), or the task
    // fails as a whole and nothing is acknowledged: later batches of the run are judged
    // against the `next` the earlier ones will have moved.
    const admitted = admitRun(run, this.#progress.next(agency), this.#counter.hasFinished(agency));
    const results = admitted.fresh.length > 0 ? await this.#pool.storeBatches(agency, admitted.fresh) : [];
    if (this.#progress.next(agency) !== admitted.next)
      throw new Error(
        `agency ${agency}: the journal records ${this.#progress.next(agency)} bets consumed, admission expected ${admitted.next}`,
      );
    return outcomesOf(admitted, results);
  }

  /** Records FINISHED in the journal (a repeat is neither recorded nor counted again), then counts it. */
  markFinished(agency: number, epoch: number): Promise<FinishMark> {
    return this.#op(agency, 'recording FINISHED', async (): Promise<FinishMark> => {
      if (epoch !== this.#epochs[agency - 1]) return { replaced: true };
      if (!this.#counter.hasFinished(agency)) await this.#pool.recordFinished(agency);
      const mark = this.#counter.markFinished(agency);
      const { counted, finished, expected } = mark;
      return { replaced: false, counted, finished, expected, allFinished: finished === expected, completed: mark.runDraw };
    });
  }

  async progress(): Promise<Progress> {
    return { finished: this.#counter.finished, expected: this.#counter.expected, drawn: this.#winners !== null };
  }

  /** One draw task at a time; a failed one may be started again. The task writes the winners file and the DRAW record. */
  draw(): Promise<DrawSummary> {
    if (this.#summary !== null) return Promise.resolve({ ...this.#summary, ranHere: false });
    if (this.#closing !== null) return Promise.reject(new StorageClosedError('the draw'));
    this.#drawing ??= this.#pool.draw().then(
      (result) => {
        this.#winners = new Map(result.winners);
        const winners = result.winners.reduce((n, [, docs]) => n + docs.length, 0);
        const summary: DrawSummary = { bets: result.scanned, winners, drawnBy: this.#serverId, ranHere: true };
        this.#summary = summary;
        this.#drawing = null;
        this.#settleWaiters(null);
        for (const l of this.#drawnListeners) l(summary);
        return summary;
      },
      (err: Error) => {
        this.#drawing = null;
        this.#settleWaiters(err);
        throw err;
      },
    );
    return this.#drawing;
  }

  async winners(agency: number): Promise<string[] | null> {
    this.#checkAgency(agency);
    return this.#winners === null ? null : (this.#winners.get(agency) ?? []);
  }

  waitForDraw(): Promise<void> {
    if (this.#closing !== null) return Promise.reject(new StorageClosedError('waiting for the draw'));
    if (this.#winners !== null) return Promise.resolve();
    this.#waiters ??= deferred();
    return this.#waiters.promise;
  }

  /**
   * Lets the pool finish what it was given (within `deadlineMs`, then forces it), then flushes
   * (fdatasync, whatever SERVER_FSYNC says: after a clean drain nothing is left for recovery to cut) and closes
   * the bets file and the journal, logging each. Idempotent.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    this.#closing ??= (async () => {
      this.#settleWaiters(new StorageClosedError('waiting for the draw'));
      const pool = this.pool;
      const drained =
        opts.deadlineMs === undefined ? await pool.close().then(() => true) : await settlesWithin(pool.close(), opts.deadlineMs);
      if (!drained) await pool.close(true);
      this.#log.info({ action: 'close_pool', result: 'success', workers: pool.workers, forzado: drained ? 'no' : 'si' });
      ProtectedStorage.close(this.#storage);
      this.#log.info({ action: 'close_storage', result: 'success', archivo: this.#storage.path });
      this.#log.info({ action: 'close_journal', result: 'success', archivo: this.#storage.journal?.path ?? '' });
    })();
    return this.#closing;
  }

  /**
   * Runs `op` once every operation serialized before it for `agency` has settled (FIFO per
   * agency; agencies do not wait for each other). A failure reaches only its own caller.
   */
  #op<T>(agency: number, what: string, op: () => Promise<T>): Promise<T> {
    try {
      this.#checkAgency(agency);
      if (this.#closing !== null) throw new StorageClosedError(what);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#ops.run(agency, op);
  }

  #checkAgency(agency: number): void {
    if (!Number.isInteger(agency) || agency < 1 || agency > this.agencies) throw new UnknownAgencyError(agency, this.agencies);
  }

  #settleWaiters(err: Error | null): void {
    const waiters = this.#waiters;
    this.#waiters = null;
    if (err === null) waiters?.resolve();
    else waiters?.reject(err);
  }
}
