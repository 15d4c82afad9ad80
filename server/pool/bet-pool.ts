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
      workerData: opts.init,
    });
  }

  get workers(): number {
    return this.#piscina?.maxThreads ?? 0;
  }

  storeBatches(task: Omit<StoreBatchesTask, 'kind'>): Promise<StoreBatchResult[]> {
    const full: StoreBatchesTask = { kind: TaskKind.STORE_BATCHES, ...task };
    return this.#run(full, [task.bytes.buffer as ArrayBuffer]) as Promise<StoreBatchResult[]>;
  }

  draw(): Promise<DrawResult> {
    return this.#run({ kind: TaskKind.DRAW }, []) as Promise<DrawResult>;
  }

  #run(task: Task, transferList: ArrayBuffer[]): Promise<TaskResult> {
    if (this.#closing !== null) return Promise.reject(new Error('the worker pool is closed'));
    if (this.#inline !== null) return new Promise((resolve) => setImmediate(resolve)).then(() => this.#inline!.run(task));
    return this.#piscina!.run(task, { transferList });
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
