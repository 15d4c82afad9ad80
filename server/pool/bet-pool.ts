/**
 * The worker pool that validates, stores and draws. With `workers: 0` the same handlers
 * run inline on the main thread (for the benchmark's comparison only): the storage then
 * refuses to wait on its lock, which is safe because nothing else holds it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { createHandlers, type Handlers } from './handlers.js';
import {
  TaskKind, type DrawResult, type StoreBatchResult, type StoreBatchesTask, type Task, type TaskResult, type WorkerInit,
} from './tasks.js';

export interface BetPoolOptions {
  workers: number;
  init: WorkerInit;
}

/** One BATCH frame's payload fields, as the session decoded them. */
export interface EncodedBatch {
  seq: number;
  count: number;
  bets: Uint8Array;
}

/**
 * A task's input is copied into a slot of shared memory that the worker reads in place; the
 * slot is reused once the task settles. (A fresh transferred buffer per task was external
 * memory that V8 reclaimed late: tens of MB of RSS per worker at 1M bets.) A session has at
 * most one task in flight and a task at most 32 frames of 8 KiB, so slots in use are bounded
 * by the connections; at most SLOTS_KEPT idle ones are kept.
 */
const SLOT_BYTES = 256 << 10;
const SLOTS_KEPT = 64;
/**
 * A worker's young generation: its tasks allocate little (rows go to a reused buffer), and the
 * draw's chunks die young. V8's default let each worker grow it to 16+ MiB during the draw
 * (~20 MB of RSS at 1M bets); 8 MiB costs the draw no measurable time.
 */
const WORKER_YOUNG_GEN_MB = 8;

/**
 * Under vitest the sources are .ts: workers then load them through tsx. Once bundled
 * (tools/bundle.ts), this code lives in dist/server/main.js and the worker in ./pool/.
 */
function workerFile(): { filename: string; execArgv: string[] } {
  const here = import.meta.url;
  if (here.endsWith('.ts')) return { filename: fileURLToPath(new URL('./worker.ts', here)), execArgv: ['--import', 'tsx'] };
  const beside = fileURLToPath(new URL('./worker.js', here));
  return { filename: existsSync(beside) ? beside : fileURLToPath(new URL('./pool/worker.js', here)), execArgv: [] };
}

export class BetPool {
  readonly #piscina: Piscina<Task, TaskResult> | null;
  readonly #inline: Handlers | null;
  #closing: Promise<void> | null = null;
  #destroying: Promise<void> | null = null;
  readonly #freeSlots: SharedArrayBuffer[] = [];

  constructor(opts: BetPoolOptions) {
    if (opts.workers === 0) {
      this.#piscina = null;
      this.#inline = createHandlers(opts.init, true);
      return;
    }
    this.#inline = null;
    this.#piscina = new Piscina<Task, TaskResult>({
      ...workerFile(),
      minThreads: opts.workers,
      maxThreads: opts.workers,
      idleTimeout: Infinity,
      recordTiming: false,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB },
      workerData: opts.init,
    });
  }

  get workers(): number {
    return this.#piscina?.maxThreads ?? 0;
  }

  /** Stores consecutive batches of one agency in one task; one result per batch, in order. */
  storeBatches(agency: number, batches: readonly EncodedBatch[]): Promise<StoreBatchResult[]> {
    const size = batches.reduce((n, b) => n + b.bets.length, 0);
    const slot = this.#freeSlots.pop() ?? new SharedArrayBuffer(Math.max(size, SLOT_BYTES));
    const bytes = new Uint8Array(slot, 0, size);
    let offset = 0;
    const refs = batches.map(({ seq, count, bets }) => {
      bytes.set(bets, offset);
      offset += bets.length;
      return { seq, count, start: offset - bets.length, end: offset };
    });
    const task: StoreBatchesTask = { kind: TaskKind.STORE_BATCHES, agency, batches: refs, bytes };
    const result = this.#run(task) as Promise<StoreBatchResult[]>;
    // Reused only once the task is over: a worker reads the slot until then.
    const release = (): void => {
      if (slot.byteLength === SLOT_BYTES && this.#freeSlots.length < SLOTS_KEPT) this.#freeSlots.push(slot);
    };
    result.then(release, release);
    return result;
  }

  draw(): Promise<DrawResult> {
    return this.#run({ kind: TaskKind.DRAW }) as Promise<DrawResult>;
  }

  #run(task: Task): Promise<TaskResult> {
    if (this.#closing !== null) return Promise.reject(new Error('the worker pool is closed'));
    if (this.#inline !== null) return new Promise((resolve) => setImmediate(resolve)).then(() => this.#inline!.run(task));
    return this.#piscina!.run(task);
  }

  /**
   * Lets queued tasks finish, then stops the workers. Idempotent; never rejects.
   * `force` (after the drain deadline) terminates the workers at once, abandoning their tasks.
   */
  close(force = false): Promise<void> {
    const piscina = this.#piscina;
    this.#closing ??= piscina === null ? Promise.resolve() : piscina.close().catch(() => {});
    if (!force || piscina === null) return this.#closing;
    this.#destroying ??= piscina.destroy().catch(() => {});
    return this.#destroying;
  }
}
