/**
 * A readers-writer lock on a SharedArrayBuffer, usable from any thread that maps it.
 * Layout (Int32Array of LOCK_WORDS):
 *   [0] state: -1 = a writer holds it, 0 = free, n > 0 = n readers hold it
 *   [1] writers waiting: readers do not enter while it is > 0, so writers are never starved
 * Only worker threads may block (`Atomics.wait`); the main thread uses the try* methods.
 */
const LOCK_WORDS = 2;
const STATE = 0;
const WRITERS_WAITING = 1;
const WRITER = -1;

export class LockBusyError extends Error {
  constructor(what: string) {
    super(`the storage lock is busy and this thread may not wait for it (${what})`);
    this.name = 'LockBusyError';
  }
}

export class RWLock {
  readonly #words: Int32Array;

  constructor(sab: SharedArrayBuffer, byteOffset = 0) {
    this.#words = new Int32Array(sab, byteOffset, LOCK_WORDS);
  }

  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(LOCK_WORDS * Int32Array.BYTES_PER_ELEMENT);
  }

  tryAcquireWrite(): boolean {
    return Atomics.compareExchange(this.#words, STATE, 0, WRITER) === 0;
  }

  acquireWrite(): void {
    const w = this.#words;
    Atomics.add(w, WRITERS_WAITING, 1);
    for (;;) {
      const seen = Atomics.compareExchange(w, STATE, 0, WRITER);
      if (seen === 0) break;
      Atomics.wait(w, STATE, seen);
    }
    Atomics.sub(w, WRITERS_WAITING, 1);
  }

  releaseWrite(): void {
    if (Atomics.compareExchange(this.#words, STATE, WRITER, 0) !== WRITER) throw new Error('releaseWrite without holding the write lock');
    Atomics.notify(this.#words, STATE);
  }

  tryAcquireRead(): boolean {
    const w = this.#words;
    const seen = Atomics.load(w, STATE);
    if (seen < 0 || Atomics.load(w, WRITERS_WAITING) > 0) return false;
    return Atomics.compareExchange(w, STATE, seen, seen + 1) === seen;
  }

  acquireRead(): void {
    const w = this.#words;
    for (;;) {
      const seen = Atomics.load(w, STATE);
      if (seen >= 0 && Atomics.load(w, WRITERS_WAITING) === 0) {
        if (Atomics.compareExchange(w, STATE, seen, seen + 1) === seen) return;
        continue;
      }
      // A waiting writer that has not entered yet leaves STATE at >= 0; it will notify on
      // release, and the short timeout covers a writer that gives up between our loads.
      Atomics.wait(w, STATE, seen, 50);
    }
  }

  releaseRead(): void {
    const w = this.#words;
    for (;;) {
      // Check before decrementing: a stray release must not turn "free" (0) into "writer" (-1).
      const seen = Atomics.load(w, STATE);
      if (seen <= 0) throw new Error('releaseRead without holding a read lock');
      if (Atomics.compareExchange(w, STATE, seen, seen - 1) !== seen) continue;
      if (seen === 1) Atomics.notify(w, STATE);
      return;
    }
  }

  /**
   * Takes a read lock: waits for it when `block`, else throws LockBusyError if a writer holds
   * or awaits it. The caller releases it (releaseRead), also across awaits, which withWrite's
   * synchronous `fn` cannot span.
   */
  enterRead(block: boolean): void {
    if (block) this.acquireRead();
    else if (!this.tryAcquireRead()) throw new LockBusyError('read');
  }

  /** Runs `fn` holding the write lock; `block` false refuses to wait (main thread). */
  withWrite<T>(fn: () => T, block: boolean): T {
    if (block) this.acquireWrite();
    else if (!this.tryAcquireWrite()) throw new LockBusyError('write');
    try {
      return fn();
    } finally {
      this.releaseWrite();
    }
  }
}
