/**
 * The few promise helpers the server, the client, the tools and the tests share: written once.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** A promise with its settle functions outside; settling twice is a no-op, as for any promise. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** True when `p` settles (either way) within `ms`, false when the time runs out first; never rejects. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** `p`'s value, or a rejection with `onTimeout()` once `ms` pass first. The timer never outlives the race. */
export async function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), Math.max(0, ms));
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface BackoffOptions {
  /** First delay; it grows by `factor` after each failure up to `maxMs` (past `steadyMs`). */
  readonly initialMs: number;
  /** For this long from the first attempt the delay stays `initialMs` (default 0: it grows at once). */
  readonly steadyMs?: number;
  readonly maxMs: number;
  /** Growth of the delay per failure (default 2: doubling). */
  readonly factor?: number;
  /** Total budget from the first attempt; past it the last error is thrown. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Whether an error is worth another attempt (default: every error). */
  readonly retryable?: (err: Error) => boolean;
  /** The wait the failure itself asks for (e.g. a server's "retry in N ms"), when longer than the backoff's. */
  readonly hintMs?: (err: Error) => number | null;
  /** Hears each failure that will be retried, before the wait. */
  readonly onRetry?: (err: Error, attempt: number, delayMs: number) => void;
}

/**
 * Calls `attempt(n, msLeft)` until it resolves, waiting an exponentially growing delay between
 * failures, never past the deadline. An abort (signal) ends the wait at once with the signal's reason.
 */
export async function retryWithBackoff<T>(attempt: (n: number, msLeft: number) => Promise<T>, opts: BackoffOptions): Promise<T> {
  const start = Date.now();
  const deadline = start + opts.timeoutMs;
  let delay = opts.initialMs;
  for (let n = 1; ; n++) {
    try {
      opts.signal?.throwIfAborted();
      return await attempt(n, Math.max(0, deadline - Date.now()));
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      const left = deadline - Date.now();
      if (opts.signal?.aborted || left <= 0 || opts.retryable?.(error) === false) throw error;
      const wait = Math.min(Math.max(delay, opts.hintMs?.(error) ?? 0), left);
      opts.onRetry?.(error, n, wait);
      await sleep(wait, undefined, { signal: opts.signal });
      if (Date.now() - start >= (opts.steadyMs ?? 0)) delay = Math.min(Math.round(delay * (opts.factor ?? 2)), opts.maxMs);
    }
  }
}

/**
 * One FIFO chain of operations per key: an operation starts once every operation queued
 * before it under the same key has settled; keys do not wait for each other. A failure
 * reaches only its own caller. A key's entry is dropped once its chain is idle.
 */
export class KeyedChain<K> {
  readonly #tails = new Map<K, Promise<void>>();

  run<T>(key: K, op: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(key) ?? Promise.resolve()).then(op);
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return run;
  }
}
