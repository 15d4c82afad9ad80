/**
 * Which agencies have sent FINISHED (the course's FIRST_NOTIFICATION), on a SharedArrayBuffer
 * so that any thread may mark or read it without locks. Layout (Int32Array, 1 + agencies):
 *   [0]       number of distinct agencies that have finished
 *   [1 + a-1] 1 once agency a (1-based) has finished, else 0
 * Invariant: [0] counts exactly the flags set, because only the thread that flips a flag
 * from 0 to 1 increments it; the increment that reaches `expected` happens exactly once,
 * so exactly one caller is told to run the draw.
 */
export interface FinishMark {
  /** False when this agency had already finished: a repeated notification counts once. */
  counted: boolean;
  finished: number;
  expected: number;
  /** True for exactly one call in the life of the counter: the one that completed it. */
  runDraw: boolean;
}

export class ProtectedNotificationCounter {
  readonly #words: Int32Array;
  readonly expected: number;

  constructor(sab: SharedArrayBuffer) {
    this.#words = new Int32Array(sab);
    this.expected = this.#words.length - 1;
  }

  static allocate(agencies: number): SharedArrayBuffer {
    if (!Number.isInteger(agencies) || agencies < 1) throw new RangeError(`agencies must be a positive integer, got ${agencies}`);
    return new SharedArrayBuffer((1 + agencies) * Int32Array.BYTES_PER_ELEMENT);
  }

  markFinished(agency: number): FinishMark {
    if (!Number.isInteger(agency) || agency < 1 || agency > this.expected) {
      throw new RangeError(`agency ${agency} is outside 1..${this.expected}`);
    }
    const w = this.#words;
    if (Atomics.compareExchange(w, agency, 0, 1) !== 0) {
      return { counted: false, finished: Atomics.load(w, 0), expected: this.expected, runDraw: false };
    }
    const finished = Atomics.add(w, 0, 1) + 1;
    return { counted: true, finished, expected: this.expected, runDraw: finished === this.expected };
  }

  hasFinished(agency: number): boolean {
    return agency >= 1 && agency <= this.expected && Atomics.load(this.#words, agency) === 1;
  }

  get finished(): number {
    return Atomics.load(this.#words, 0);
  }

  get allFinished(): boolean {
    return this.finished === this.expected;
  }
}
