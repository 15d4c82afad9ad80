/**
 * FINISHED and the draw (main thread): records each agency's FINISHED (durably, through the
 * pool, before it counts), starts the draw exactly once when the set completes, starts it
 * again after a failure, keeps its result, and lets held WINNERS_QUERYs wait for the next
 * outcome. It never blocks: the draw itself is one pool task, which also makes its result
 * durable. A server restarted after the draw starts with the recovered result and never
 * draws again; one restarted with every agency finished and no result draws at once.
 */
import type { Logger } from '../shared/logging/logger.js';
import { deferred } from '../shared/util/async.js';
import type { BetPool } from './pool/bet-pool.js';
import type { FinishMark, ProtectedNotificationCounter } from './sync/notification-counter.js';

export type WinnersAnswer = { ready: true; documents: string[] } | { ready: false; finished: number; expected: number };

/** What the draw needs of the pool. */
export type DrawRunner = Pick<BetPool, 'draw' | 'recordFinished'>;

/** A draw's result as recovery found it on disk. */
export interface RecoveredDraw {
  winners: Array<[agency: number, documents: string[]]>;
}

export class Draw {
  readonly #pool: DrawRunner;
  readonly #counter: ProtectedNotificationCounter;
  readonly #log: Logger;
  #winners: Map<number, string[]> | null = null;
  /** The draw task in progress (null when none is, or once it failed). */
  #running: Promise<void> | null = null;
  /** Resolved when the draw in progress ends, with a result or failed; replaced after a failure. */
  #outcome = deferred();

  /** `counter` already holds the agencies recovered as finished. */
  constructor(pool: DrawRunner, counter: ProtectedNotificationCounter, log: Logger, recovered: RecoveredDraw | null = null) {
    this.#pool = pool;
    this.#counter = counter;
    this.#log = log;
    if (recovered !== null) {
      this.#winners = new Map(recovered.winners);
      this.#outcome.resolve();
    } else if (counter.allFinished) {
      // Every FINISHED is on disk but the draw's result is not: it was cut by a stop.
      this.#start();
    }
  }

  get expected(): number {
    return this.#counter.expected;
  }
  get finished(): number {
    return this.#counter.finished;
  }
  get drawn(): boolean {
    return this.#winners !== null;
  }

  hasFinished(agency: number): boolean {
    return this.#counter.hasFinished(agency);
  }

  /** Settles once no draw task is running (at once if none is): shutdown waits for it. */
  idle(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  /**
   * Settles when the next draw outcome is known, a result or a failure, however long the other
   * agencies take; then ask winners() again (it starts a failed draw again).
   */
  nextOutcome(): Promise<void> {
    return this.#outcome.promise;
  }

  /**
   * Records FINISHED on disk, then counts it (a repeat is neither recorded nor counted twice);
   * the call that completes the set starts the draw, exactly once. Callers serialize it with
   * the agency's batches (Ingest.serialize), so it is recorded after every one of them.
   */
  async finish(agency: number): Promise<FinishMark> {
    if (!this.#counter.hasFinished(agency)) await this.#pool.recordFinished(agency);
    const mark = this.#counter.markFinished(agency);
    if (mark.runDraw) this.#start();
    return mark;
  }

  /** The agency's winners once drawn; until then NOT_READY figures, and a failed draw starts again. */
  winners(agency: number): WinnersAnswer {
    if (this.#winners === null) {
      if (this.#counter.allFinished && this.#running === null) this.#start();
      return { ready: false, finished: this.#counter.finished, expected: this.#counter.expected };
    }
    return { ready: true, documents: this.#winners.get(agency) ?? [] };
  }

  #start(): void {
    this.#log.info({ action: 'sorteo', result: 'in_progress', agencias: this.expected });
    const started = performance.now();
    this.#running = this.#pool.draw().then(
      (result) => {
        this.#winners = new Map(result.winners);
        const total = result.winners.reduce((n, [, docs]) => n + docs.length, 0);
        const ms = Math.round(performance.now() - started);
        this.#log.info({ action: 'sorteo', result: 'success', apuestas: result.scanned, ganadores: total, duracion_ms: ms });
        this.#outcome.resolve();
      },
      (err: unknown) => {
        this.#running = null;
        this.#log.error({ action: 'sorteo', result: 'fail', error: (err as Error).message });
        // Waiters woken by this failure must find a fresh outcome if they wait again.
        const ended = this.#outcome;
        this.#outcome = deferred();
        ended.resolve();
      },
    );
  }
}
