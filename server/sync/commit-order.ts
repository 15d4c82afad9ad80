/**
 * The order in which appended writes of the bets file are flushed and committed (their
 * journal records written), shared through a SharedArrayBuffer by every pool worker, so that
 * a write's flush to the disk overlaps the next write and its flush (protected-storage.ts).
 * Layout: Int32 words [next ticket, last committed ticket, generation, flushes started,
 * flushes ended, 3 unused], then one BigInt64: where the rows of the last committed write end.
 *
 * Invariants:
 *  - tickets are taken under the storage's write lock, right after the write: ticket order
 *    is file order, and a write is in the file before its ticket exists;
 *  - a write's own flush starts after its write; it counts as durable only once every flush
 *    that started before its own ended has ended too, without a failure: Linux reports a
 *    failed write-back to one fdatasync of the file, so a flush running beside ours may be
 *    the one told about our pages;
 *  - a write's records are appended at its turn only (the ticket before it has passed), so
 *    journal order stays file order;
 *  - `generation` moves, under the write lock, whenever the rows after the last committed
 *    write are cut back (a failed flush or record), and before that flush counts as ended: a
 *    ticket of an older generation has lost its rows and must fail at its turn, and still pass
 *    it, or every later ticket would wait forever (as they do for a worker that dies between
 *    its write and its turn).
 */

const NEXT = 0;
const COMMITTED = 1;
const GENERATION = 2;
const STARTED = 3;
const ENDED = 4;
const WORDS = 8;
const END_BYTE = WORDS * Int32Array.BYTES_PER_ELEMENT;

export interface Ticket {
  readonly seq: number;
  readonly generation: number;
}

/** Whether ticket `a` comes at or after ticket `b` (the counters wrap at 2^32). */
const atOrAfter = (a: number, b: number): boolean => ((a - b) | 0) >= 0;

export class CommitOrder {
  readonly #words: Int32Array;
  readonly #end: BigInt64Array;

  constructor(sab: SharedArrayBuffer) {
    this.#words = new Int32Array(sab, 0, WORDS);
    this.#end = new BigInt64Array(sab, END_BYTE, 1);
  }

  /** A buffer for a bets file whose committed rows end at `committedEnd` (its size once recovered). */
  static allocate(committedEnd: number): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(END_BYTE + BigInt64Array.BYTES_PER_ELEMENT);
    new BigInt64Array(sab, END_BYTE, 1)[0] = BigInt(committedEnd);
    return sab;
  }

  /** Call under the write lock, right after a write: the write's place in the commit order. */
  take(): Ticket {
    const seq = (Atomics.add(this.#words, NEXT, 1) + 1) | 0;
    return { seq, generation: Atomics.load(this.#words, GENERATION) };
  }

  /** Whether the ticket's rows are still in the file (no cut-back since it was taken). */
  current(ticket: Ticket): boolean {
    return Atomics.load(this.#words, GENERATION) === ticket.generation;
  }

  /** A flush of the bets file starts. */
  flushStarts(): void {
    Atomics.add(this.#words, STARTED, 1);
  }

  /**
   * The flush ends, ok or not (after the cut-back a failure makes). Returns how many flushes
   * had started by then: the flushes the writer must see end (flushesEnded) before it trusts
   * its own.
   */
  flushEnds(): number {
    const started = Atomics.load(this.#words, STARTED);
    Atomics.add(this.#words, ENDED, 1);
    Atomics.notify(this.#words, ENDED);
    return started;
  }

  /** Resolves once `count` flushes have ended. Never blocks the thread. */
  async flushesEnded(count: number): Promise<void> {
    for (;;) {
      const seen = Atomics.load(this.#words, ENDED);
      if (atOrAfter(seen, count)) return;
      const wait = Atomics.waitAsync(this.#words, ENDED, seen);
      if (wait.async) await wait.value;
    }
  }

  /** Where the rows of the last committed write end: what a cut-back keeps. */
  get committedEnd(): number {
    return Number(Atomics.load(this.#end, 0));
  }

  /** Call under the write lock, at the ticket's turn, once its records are appended. */
  committed(end: number): void {
    Atomics.store(this.#end, 0, BigInt(end));
  }

  /** Call under the write lock, as the rows after committedEnd are cut back. */
  cutBack(): void {
    Atomics.add(this.#words, GENERATION, 1);
  }

  /** Resolves once every ticket before `ticket` has passed. Never blocks the thread. */
  async turn(ticket: Ticket): Promise<void> {
    const before = (ticket.seq - 1) | 0;
    for (;;) {
      const seen = Atomics.load(this.#words, COMMITTED);
      if (seen === before) return;
      const wait = Atomics.waitAsync(this.#words, COMMITTED, seen);
      if (wait.async) await wait.value;
    }
  }

  /** Ends the ticket's turn, committed or failed; wakes the waiting ones. */
  pass(ticket: Ticket): void {
    Atomics.store(this.#words, COMMITTED, ticket.seq);
    Atomics.notify(this.#words, COMMITTED);
  }
}
