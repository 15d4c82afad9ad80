/**
 * Slows down guessing: each failed proof from a source raises that source's penalty, and the
 * server holds the failing connection (its AUTH_FAILED answer and its slot) for a delay that
 * doubles with the penalty, up to a cap. The penalty halves every `halfLifeMs`, so a source
 * that stops failing is soon back to no delay. With the per-source cap on unauthenticated
 * connections, one source gets at most cap / delay guesses per second.
 * A success does not clear the penalty: an attacker sharing an address with a real agency
 * must not be helped by the agency's logins. Memory is bounded: at most `maxSources` are
 * tracked, the least recently failing one forgotten first.
 */
export interface ThrottleOptions {
  /** Delay after the first failure; it doubles with each further one. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly halfLifeMs: number;
  readonly maxSources: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { baseDelayMs: 250, maxDelayMs: 10_000, halfLifeMs: 60_000, maxSources: 4096 };

interface Penalty {
  score: number;
  at: number;
}

export class FailureThrottle {
  readonly #opts: ThrottleOptions;
  readonly #now: () => number;
  /** Map order is least recently failing first: a failure moves its source to the end. */
  readonly #penalties = new Map<string, Penalty>();

  constructor(opts: Partial<ThrottleOptions> = {}, now: () => number = Date.now) {
    this.#opts = { ...DEFAULT_THROTTLE, ...opts };
    this.#now = now;
  }

  /** Records a failed proof from `source`; returns how long to hold the connection before answering. */
  fail(source: string): number {
    const now = this.#now();
    const score = this.#score(source, now) + 1;
    this.#penalties.delete(source);
    this.#penalties.set(source, { score, at: now });
    if (this.#penalties.size > this.#opts.maxSources) this.#penalties.delete(this.#penalties.keys().next().value!);
    return this.#delay(score);
  }

  /** The source's current penalty as a delay (its last failure's delay, decayed); 0 once it has faded. */
  delayFor(source: string): number {
    const score = this.#score(source, this.#now());
    return score < 0.5 ? 0 : this.#delay(score);
  }

  /** Sources currently tracked. */
  get size(): number {
    return this.#penalties.size;
  }

  #score(source: string, now: number): number {
    const p = this.#penalties.get(source);
    if (p === undefined) return 0;
    const score = p.score * 2 ** (-(now - p.at) / this.#opts.halfLifeMs);
    if (score < 0.01) this.#penalties.delete(source);
    return score;
  }

  #delay(score: number): number {
    const { baseDelayMs, maxDelayMs } = this.#opts;
    return Math.round(Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, score - 1)));
  }
}
