/**
 * Sets of bet indexes in an agency's stream as sorted, disjoint, half-open ranges
 * `[from, to)`: what a server held, what a client was told or had acknowledged. Protocol 2's
 * `lote` is a batch's first bet index, so a batch is the range `[lote, lote + cantidad)`.
 */
export class Ranges {
  /** Invariant: sorted by `from`, disjoint and not touching (`a.to < b.from`), none empty. */
  readonly #parts: Array<[number, number]> = [];

  static of(from: number, to: number): Ranges {
    return new Ranges().add(from, to);
  }

  add(from: number, to: number): this {
    if (!(to > from)) return this;
    let lo = from;
    let hi = to;
    const kept: Array<[number, number]> = [];
    for (const [a, b] of this.#parts) {
      if (b < lo || a > hi) kept.push([a, b]);
      else {
        lo = Math.min(lo, a);
        hi = Math.max(hi, b);
      }
    }
    kept.push([lo, hi]);
    kept.sort((x, y) => x[0] - y[0]);
    this.#parts.splice(0, this.#parts.length, ...kept);
    return this;
  }

  addAll(other: Ranges): this {
    for (const [a, b] of other.#parts) this.add(a, b);
    return this;
  }

  /** Whether every index of `[from, to)` is in the set. */
  covers(from: number, to: number): boolean {
    return to <= from || this.#parts.some(([a, b]) => a <= from && to <= b);
  }

  /** The indexes here and not in `other`. */
  minus(other: Ranges): Ranges {
    const out = new Ranges();
    for (const [a, b] of this.#parts) {
      let at = a;
      for (const [c, d] of other.#parts) {
        if (d <= at || c >= b) continue;
        if (c > at) out.add(at, c);
        at = Math.max(at, d);
      }
      if (at < b) out.add(at, b);
    }
    return out;
  }

  get size(): number {
    return this.#parts.reduce((n, [a, b]) => n + b - a, 0);
  }

  get empty(): boolean {
    return this.#parts.length === 0;
  }

  /** The end of the last range (0 when empty). */
  get end(): number {
    return this.#parts.at(-1)?.[1] ?? 0;
  }

  /** Bet indexes for people, inclusive: `7800-12449, 20100-20249`. */
  toString(max = 6): string {
    const shown = this.#parts.slice(0, max).map(([a, b]) => (b - a === 1 ? `${a}` : `${a}-${b - 1}`));
    if (this.#parts.length > max) shown.push(`... (${this.#parts.length} ranges)`);
    return shown.join(', ');
  }
}
