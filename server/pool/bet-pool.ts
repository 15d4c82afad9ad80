/**
 * The worker pool that validates, stores and draws. With `workers: 0` the same worker tasks
 * run inline on the main thread (for the benchmark's comparison only): the storage then
 * refuses to wait on its lock, which is safe because nothing else holds it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { deferred, type Deferred } from '../../shared/util/async.js';
import { createWorkerTasks, type WorkerTasks } from './worker-tasks.js';
import type { DrawResult, StoreBatchResult, StoreBatchesResult, StoreBatchesTask, WorkerInit } from './tasks.js';
import { TaskKind, type Task, type TaskResult } from './tasks.js';

export interface BetPoolOptions {
  workers: number;
  init: WorkerInit;
  /** Hears how long each store task's fsyncs took (SERVER_FSYNC on), for the metrics. */
  onFsync?: (seconds: number) => void;
}

/** One BATCH frame's payload fields, as the session decoded them. */
export interface EncodedBatch {
  first: number;
  count: number;
  bets: Uint8Array;
}

/**
 * A task's input is copied into a slot of shared memory that the worker reads in place; the
 * slot is reused once the task settles. (A fresh transferred buffer per task was external
 * memory that V8 reclaimed late; docs/benchmarks.md has the figures.) A task
 * is closed before it outgrows SLOT_BYTES (a run of 64 frames of at most 8,181 payload bytes
 * fits in one), and each session has at most one run in flight, so slots in use are bounded
 * by the connections; at most SLOTS_KEPT idle ones are kept.
 */
export const SLOT_BYTES = 512 << 10;
const SLOTS_KEPT = 32;
/**
 * A worker's young generation: its tasks allocate little (rows go to a reused buffer), and the
 * draw's chunks die young. V8's default let each worker grow it to 16+ MiB during the draw,
 * for memory and no speed (docs/benchmarks.md).
 */
const WORKER_YOUNG_GEN_MB = 8;
/**
 * Store tasks a worker holds at once: one writing while the one before waits for its flush
 * (ProtectedStorage.storeRows). piscina's default 'sync' atomics block a worker's event loop
 * only while it holds no task, so a flush's completion, which a task awaits, is delivered.
 */
const TASKS_PER_WORKER = 2;

/**
 * Under vitest the sources are .ts: workers then load them through tsx. Once bundled
 * (tools/bundle.ts), this code and piscina's live in dist/server/cli.cjs, and the worker is the
 * CommonJS ./pool/worker.cjs: piscina require()s it, where an ES module would start Node's ES
 * module loader in every worker.
 */
function workerFile(): { filename: string; execArgv: string[] } {
  const here = import.meta.url;
  if (here.endsWith('.ts')) return { filename: fileURLToPath(new URL('./worker.ts', here)), execArgv: ['--import', 'tsx'] };
  const beside = fileURLToPath(new URL('./worker.js', here));
  return { filename: existsSync(beside) ? beside : fileURLToPath(new URL('./pool/worker.cjs', here)), execArgv: [] };
}

/** A session's run waiting for the turn's task (group commit). */
interface PendingRun {
  agency: number;
  batches: readonly EncodedBatch[];
  results: Deferred<StoreBatchResult[]>;
}

export class BetPool {
  readonly #piscina: Piscina<Task, TaskResult> | null;
  readonly #inline: WorkerTasks | null;
  #closing: Promise<void> | null = null;
  #destroying: Promise<void> | null = null;
  readonly #freeSlots: SharedArrayBuffer[] = [];
  #pending: PendingRun[] = [];
  #pendingBytes = 0;
  #flushQueued = false;
  /** Store tasks sent and not yet settled. */
  #storing = 0;
  /**
   * Every task sent and not yet settled: the draw waits for them, and close() for the inline
   * ones, as piscina's close() waits for its queued tasks.
   */
  readonly #tasks = new Set<Promise<unknown>>();
  /**
   * The draw in flight, which runs alone: it holds the storage's read lock across awaits, so
   * a write taken by its own worker meanwhile would block that thread on its own lock.
   */
  #drawing: Promise<void> | null = null;
  readonly #onFsync: ((seconds: number) => void) | undefined;

  constructor(opts: BetPoolOptions) {
    this.#onFsync = opts.onFsync;
    if (opts.workers === 0) {
      this.#piscina = null;
      this.#inline = createWorkerTasks(opts.init, true);
      return;
    }
    this.#inline = null;
    this.#piscina = new Piscina<Task, TaskResult>({
      ...workerFile(),
      minThreads: opts.workers,
      maxThreads: opts.workers,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: TASKS_PER_WORKER,
      recordTiming: false,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB },
      workerData: opts.init,
    });
  }

  get workers(): number {
    return this.#piscina?.maxThreads ?? 0;
  }

  /**
   * Stores consecutive batches of one agency; one result per batch, in order. Group commit:
   * the runs of every session that ask while each worker holds TASKS_PER_WORKER store tasks
   * (or, with room, in the same event-loop turn: all the socket reads of one poll phase), or
   * while the draw runs, travel as one task and land in one write, in the order they asked; a
   * busy pool so takes fewer, larger writes, instead of queueing a task per turn behind the
   * flushes of the ones before. A run that would take the waiting ones past SLOT_BYTES sends
   * them at once, busy or not, and waits for the next task; tasks may land in any order (each
   * session has one run in flight, so an agency's own order always holds).
   */
  storeBatches(agency: number, batches: readonly EncodedBatch[]): Promise<StoreBatchResult[]> {
    if (this.#closing !== null) return Promise.reject(new Error('the worker pool is closed'));
    const bytes = batches.reduce((n, b) => n + b.bets.length, 0);
    if (this.#pendingBytes + bytes > SLOT_BYTES) this.#flush();
    const results = deferred<StoreBatchResult[]>();
    this.#pending.push({ agency, batches, results });
    this.#pendingBytes += bytes;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => {
        this.#flushQueued = false;
        this.#flushIfFree();
      });
    }
    return results.promise;
  }

  /** Sends the pending runs if a worker (inline: the thread) can take a store task; else a settling task does. */
  #flushIfFree(): void {
    if (this.#storing < Math.max(1, this.workers) * TASKS_PER_WORKER) this.#flush();
  }

  /** Sends the pending runs as one task (after the draw in flight); every run's promise settles, whatever happens. */
  #flush(): void {
    const runs = this.#pending;
    if (runs.length === 0 || this.#drawing !== null) return;
    const size = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    try {
      this.#send(runs, size);
    } catch (err) {
      for (const run of runs) run.results.reject(err);
    }
  }

  #send(runs: PendingRun[], size: number): void {
    // Runs larger than a slot (several sessions' runs held back while the draw ran) get a buffer of their own.
    const slot = size <= SLOT_BYTES ? (this.#freeSlots.pop() ?? new SharedArrayBuffer(SLOT_BYTES)) : new SharedArrayBuffer(size);
    const bytes = new Uint8Array(slot, 0, size);
    let offset = 0;
    const task: StoreBatchesTask = {
      kind: TaskKind.STORE_BATCHES,
      bytes,
      runs: runs.map(({ agency, batches }) => ({
        agency,
        batches: batches.map(({ first, count, bets }) => {
          bytes.set(bets, offset);
          offset += bets.length;
          return { first, count, start: offset - bets.length, end: offset };
        }),
      })),
    };
    // The slot is reused only once the task is over: a worker reads it until then. Runs that
    // waited for a worker go as soon as one is free.
    const release = (): void => {
      if (slot.byteLength === SLOT_BYTES && this.#freeSlots.length < SLOTS_KEPT) this.#freeSlots.push(slot);
      this.#storing--;
      this.#flushIfFree();
    };
    const stored = this.#run(task) as Promise<StoreBatchesResult>;
    // Counted once the task exists, so that nothing can leave the count stuck above zero.
    this.#storing++;
    stored.then(
      ({ runs: results, fsyncSeconds }) => {
        release();
        if (fsyncSeconds !== null) this.#onFsync?.(fsyncSeconds);
        runs.forEach((run, i) => {
          run.results.resolve(results[i]!);
        });
      },
      (err: unknown) => {
        release();
        for (const run of runs) run.results.reject(err);
      },
    );
  }

  /**
   * Runs the draw, alone: it sends the runs still waiting, waits for every task sent before
   * it, and holds back the tasks asked for meanwhile until it settles. With a journal the
   * result is on disk (winners file, DRAW record) once this resolves.
   */
  draw(): Promise<DrawResult> {
    this.#flush();
    const before = Promise.allSettled([...this.#tasks, this.#drawing]);
    const result = before.then(() => this.#run({ kind: TaskKind.DRAW }) as Promise<DrawResult>);
    const drawing = result.then(
      () => {},
      () => {},
    );
    this.#drawing = drawing;
    void drawing.then(() => {
      if (this.#drawing === drawing) this.#drawing = null;
      this.#flushIfFree();
    });
    return result;
  }

  /**
   * Resolves once the agency's FINISHED is in the journal (at once without one). It sends the
   * runs still waiting first; the storage's commit order then records it after every write a
   * worker started before it. Across workers, what orders an agency's FINISHED after its runs
   * is the backend, which chains each agency's operations (file-backend.ts).
   */
  async recordFinished(agency: number): Promise<void> {
    this.#flush();
    // Nothing between the last check and #run: a draw started meanwhile would not wait for this task.
    while (this.#drawing !== null) await this.#drawing;
    await this.#run({ kind: TaskKind.RECORD_FINISHED, agency });
  }

  #run(task: Task): Promise<TaskResult> {
    if (this.#closing !== null) return Promise.reject(new Error('the worker pool is closed'));
    const running = this.#start(task);
    const settled = running.then(
      () => {},
      () => {},
    );
    this.#tasks.add(settled);
    void settled.then(() => this.#tasks.delete(settled));
    return running;
  }

  #start(task: Task): Promise<TaskResult> {
    if (this.#inline === null) return this.#piscina!.run(task);
    const inline = this.#inline;
    return new Promise((resolve) => setImmediate(resolve)).then(() => inline.run(task));
  }

  /**
   * Sends the runs still waiting for their turn, lets queued tasks finish, then stops the
   * workers. Idempotent; never rejects. `force` (after the drain deadline) terminates the
   * workers at once, abandoning their tasks.
   */
  close(force = false): Promise<void> {
    if (this.#closing === null) this.#flush();
    const piscina = this.#piscina;
    this.#closing ??= piscina === null ? Promise.all(this.#tasks).then(() => {}) : piscina.close().catch(() => {});
    if (!force || piscina === null) return this.#closing;
    this.#destroying ??= piscina.destroy().catch(() => {});
    return this.#destroying;
  }
}
