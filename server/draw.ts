/**
 * FINISHED and the draw as the sessions see them (main thread), over the storage backend:
 * records each FINISHED (durably, in the backend, before it is acknowledged), starts the draw
 * when the FINISHED that completes the set comes back `completed` (exactly one call across
 * all servers), starts it again after a failure, and lets held WINNERS_QUERYs wait for the
 * next outcome (the backend wakes them: a promise with the file backend, LISTEN/NOTIFY with
 * PostgreSQL; nobody polls). It never blocks: the draw runs in the backend (a pool task, or a
 * transaction), which makes its result durable. At start, `resume()` draws a set that is
 * complete with no result (a stop mid-draw, or a drawing server that died).
 */
import type { Logger } from '../shared/logging/logger.js';
import type { DrawView } from './metrics/server-metrics.js';
import type { DrawSummary, FinishMark, Progress, StorageBackend } from './storage/backend.js';

export type WinnersAnswer = { ready: true; documents: string[] } | { ready: false; finished: number; expected: number };

/** What the draw needs of the backend. */
export type DrawBackend = Pick<StorageBackend, 'agencies' | 'markFinished' | 'progress' | 'draw' | 'winners' | 'waitForDraw' | 'onDrawn'>;

/** Runs one draw, e.g. timed by the metrics (ServerMetrics.timeDraw). */
export type DrawTimer = (run: () => Promise<DrawSummary>) => Promise<DrawSummary>;

export class Draw implements DrawView {
  readonly #backend: DrawBackend;
  readonly #log: Logger;
  readonly #timer: DrawTimer;
  /** The draw started here and still running (null when none is). */
  #running: Promise<void> | null = null;
  #startedAt: number | null = null;
  /** The last progress this server saw (exact with the file backend; other servers move it too with PostgreSQL). */
  #seen: Progress;

  constructor(backend: DrawBackend, log: Logger, timer: DrawTimer = (run) => run()) {
    this.#backend = backend;
    this.#log = log;
    this.#timer = timer;
    this.#seen = { finished: 0, expected: backend.agencies, drawn: false };
    backend.onDrawn((summary) => this.#drawn(summary));
  }

  get expected(): number {
    return this.#seen.expected;
  }
  get finished(): number {
    return this.#seen.finished;
  }
  get drawn(): boolean {
    return this.#seen.drawn;
  }

  /** Reads where the lottery stands and draws a complete set that has no result yet. */
  async resume(): Promise<void> {
    const p = await this.progress();
    if (p.finished === p.expected && !p.drawn) this.#start();
  }

  /** The finished set and the draw, read from the backend (PING, NOT_READY). */
  async progress(): Promise<Progress> {
    const p = await this.#backend.progress();
    this.#seen = { ...p, drawn: p.drawn || this.#seen.drawn };
    return p;
  }

  /** Settles once no draw started here is running (at once if none is): shutdown waits for it. */
  idle(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  /**
   * Settles when the next draw outcome is known, a result or a failure (or the backend
   * closes), however long the other agencies take; then ask winners() again (it starts a
   * failed draw again).
   */
  nextOutcome(): Promise<void> {
    return this.#backend.waitForDraw().then(
      () => {},
      () => {},
    );
  }

  /**
   * Records FINISHED (a repeat counts once); the call that completes the set starts the draw.
   * `replaced`: a newer session holds the agency, nothing was recorded.
   */
  async finish(agency: number, epoch: number): Promise<FinishMark> {
    const mark = await this.#backend.markFinished(agency, epoch);
    if (mark.replaced) return mark;
    this.#seen = { ...this.#seen, finished: Math.max(this.#seen.finished, mark.finished), expected: mark.expected };
    if (mark.completed) this.#start();
    return mark;
  }

  /** The agency's winners once drawn; until then NOT_READY figures, and a set complete with no draw running here draws. */
  async winners(agency: number): Promise<WinnersAnswer> {
    const documents = await this.#backend.winners(agency);
    if (documents !== null) {
      this.#seen = { ...this.#seen, drawn: true };
      return { ready: true, documents };
    }
    const p = await this.progress();
    if (p.finished === p.expected && !p.drawn && this.#running === null) this.#start();
    return { ready: false, finished: p.finished, expected: p.expected };
  }

  #start(): void {
    this.#log.info({ action: 'sorteo', result: 'in_progress', agencias: this.expected });
    this.#startedAt = performance.now();
    this.#running = this.#timer(() => this.#backend.draw()).then(
      () => {
        this.#running = null;
      },
      (err: unknown) => {
        this.#running = null;
        this.#startedAt = null;
        this.#log.error({ action: 'sorteo', result: 'fail', error: (err as Error).message });
      },
    );
  }

  /** Every draw the backend ran or found done, whoever asked for it: logged once per draw. */
  #drawn(summary: DrawSummary): void {
    this.#seen = { ...this.#seen, drawn: true };
    const figures = { apuestas: summary.bets, ganadores: summary.winners };
    if (!summary.ranHere) {
      this.#log.info({ action: 'sorteo_hecho', result: 'success', ...figures, por: summary.drawnBy });
      return;
    }
    const ms = this.#startedAt === null ? {} : { duracion_ms: Math.round(performance.now() - this.#startedAt) };
    this.#log.info({ action: 'sorteo', result: 'success', ...figures, ...ms });
  }
}
