/**
 * The order in which appended writes of the bets file are committed (their journal records
 * written), shared through a SharedArrayBuffer by every pool worker, so that a write's flush
 * to the disk overlaps the next write and its flush (protected-storage.ts). Layout: Int32
 * words [next ticket, last committed ticket, generation, broken], then one BigInt64: where the
 * rows of the last committed write end in the bets file.
 *
 * Invariants:
 *  - tickets are taken under the storage's write lock, right after the write: ticket order
 *    is file order;
 *  - a write's records are appended at its turn only (the ticket before it has passed), so
 *    journal order stays file order whatever order the flushes finish in;
 *  - `generation` moves, under the write lock, whenever the rows after the last committed
 *    write are cut back (a failed flush or record): a ticket of an older generation has lost
 *    its rows and must fail at its turn, and still pass it, or every later ticket would wait
 *    forever (as they do for a worker that dies between its write and its turn).
 */

const NEXT = 0;
const COMMITTED = 1;
const GENERATION = 2;
const BROKEN = 3;
const WORDS = 4;
const END_BYTE = WORDS * Int32Array.BYTES_PER_ELEMENT;

/** A cut-back failed: rows nobody acknowledged may follow the committed ones, and no write may commit after them. */
export class CommitOrderBrokenError extends Error {
  constructor(why = 'an earlier cut-back of the bets file failed', cause?: unknown) {
    super(
      `${why}: rows nobody acknowledged may follow the stored ones, so nothing more is stored; restart the server, and recovery cuts them`,
      { cause },
    );
    this.name = 'CommitOrderBrokenError';
  }
}

export interface Ticket {
  readonly seq: number;
  readonly generation: number;
}

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

  /** Call under the write lock, before a write: refuses it once a cut-back has failed (breakDown). */
  checkUsable(): void {
    if (Atomics.load(this.#words, BROKEN) !== 0) throw new CommitOrderBrokenError();
  }

  /** Call under the write lock when a cut-back fails: every later write is refused. */
  breakDown(): void {
    Atomics.store(this.#words, BROKEN, 1);
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
