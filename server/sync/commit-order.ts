/**
 * The order in which appended writes of the bets file are flushed and committed (their
 * journal records written), shared through a SharedArrayBuffer by every pool worker, so that
 * a write's flush to the disk overlaps the next write (protected-storage.ts). Layout: Int32
 * words [next ticket, last committed ticket, generation, flushing, last flushed ticket, 3
 * unused], then one BigInt64: where the rows of the last committed write end in the file.
 *
 * Invariants:
 *  - tickets are taken under the storage's write lock, right after the write: ticket order
 *    is file order, and a write is in the file before its ticket exists;
 *  - one flush of the bets file at a time, process-wide, and it covers every ticket taken
 *    before it started: Linux reports a failed write-back to one fdatasync of the file only,
 *    so two flushes at once could tell one writer "durable" about pages the other's error was
 *    about. Writes made during a flush share the next one (group commit);
 *  - a write's records are appended at its turn only (the ticket before it has passed), so
 *    journal order stays file order;
 *  - `generation` moves, under the write lock, whenever the rows after the last committed
 *    write are cut back (a failed flush or record): a ticket of an older generation has lost
 *    its rows and must fail at its turn, and still pass it, or every later ticket would wait
 *    forever (as they do for a worker that dies between its write and its turn).
 */

const NEXT = 0;
const COMMITTED = 1;
const GENERATION = 2;
const FLUSHING = 3;
const FLUSHED = 4;
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

  /** Whether a flush that started after the ticket's write has succeeded. */
  flushed(ticket: Ticket): boolean {
    return atOrAfter(Atomics.load(this.#words, FLUSHED), ticket.seq);
  }

  /**
   * Claims the one flush in flight: null when another holds it (wait with `flushEnded`),
   * else the last ticket taken, which the flush covers. Call endFlush whatever happens.
   */
  startFlush(): number | null {
    if (Atomics.compareExchange(this.#words, FLUSHING, 0, 1) !== 0) return null;
    return Atomics.load(this.#words, NEXT);
  }

  /** Ends the flush in flight; `covered` is what startFlush answered, when the flush succeeded. */
  endFlush(covered: number | null): void {
    if (covered !== null) Atomics.store(this.#words, FLUSHED, covered);
    Atomics.store(this.#words, FLUSHING, 0);
    Atomics.notify(this.#words, FLUSHING);
  }

  /** Resolves once no flush is in flight. Never blocks the thread. */
  async flushEnded(): Promise<void> {
    for (;;) {
      const wait = Atomics.waitAsync(this.#words, FLUSHING, 1);
      if (!wait.async) return;
      await wait.value;
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
