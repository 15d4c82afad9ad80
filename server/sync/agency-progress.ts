/**
 * Each agency's `next` — bets consumed, stored or refused — on a SharedArrayBuffer, so the
 * main thread reads what the pool workers have made durable. Layout: Uint32Array, one word
 * per agency (index agency - 1). Invariant: a word is written only under the storage's write
 * lock, right after the journal records that moved it were appended, so it never runs ahead
 * of the journal; and it is written even when the worker dies before its result comes back,
 * so the main thread never judges a batch against a stale `next`.
 */
export class AgencyProgress {
  readonly #words: Uint32Array;

  constructor(sab: SharedArrayBuffer) {
    this.#words = new Uint32Array(sab);
  }

  /** A buffer holding `next` (index agency - 1), e.g. as recovery found it. */
  static allocate(next: readonly number[]): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(Math.max(1, next.length) * Uint32Array.BYTES_PER_ELEMENT);
    new Uint32Array(sab).set(next);
    return sab;
  }

  get agencies(): number {
    return this.#words.length;
  }

  next(agency: number): number {
    return Atomics.load(this.#words, agency - 1);
  }

  /** Call only under the write lock, once the records that consume bets up to `next` are appended. */
  advance(agency: number, next: number): void {
    Atomics.store(this.#words, agency - 1, next);
  }
}
