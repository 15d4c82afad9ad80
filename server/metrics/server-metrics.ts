/**
 * What the server counts for Prometheus, in a registry of its own (never prom-client's
 * global one: two servers in one process count apart). The server's code calls the hooks
 * below, a line each; what already lives elsewhere (the finished set, whether the draw is
 * done) is read when scraped instead of copied. Aggregates only: nothing here names an agency
 * or a bet, so the endpoint tells a scraper nothing a client could not see.
 * Main thread only; the pool's figures (fsync) come back as plain data in its task results.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AckStatus, type BatchAckDTO } from '../../shared/protocol/messages.js';
import type { DrawSummary } from '../storage/backend.js';

/** `result` label of the batches counter: the ack status, lower-case (stored, duplicate, rejected, out_of_order, ...). */
const RESULT_OF = new Map<number, string>(Object.entries(AckStatus).map(([name, status]) => [status, name.toLowerCase()]));

export const DrawState = { WAITING: 'waiting', RUNNING: 'running', DONE: 'done', FAILED: 'failed' } as const;
export type DrawState = (typeof DrawState)[keyof typeof DrawState];

/** What the scrape reads of the draw and the finished set (server/draw.ts's Draw: what this server last saw). */
export interface DrawView {
  readonly finished: number;
  readonly expected: number;
  readonly drawn: boolean;
}

const PREFIX = 'loteria_';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #betsStored: Counter;
  readonly #batches: Counter<'result'>;
  readonly #ackLatency: Histogram;
  readonly #connections: Gauge<'state'>;
  readonly #draws: Counter<'result'>;
  readonly #drawSeconds: Gauge;
  readonly #drawScanned: Gauge;
  readonly #fsync: Histogram;
  #view: DrawView | null = null;
  #drawRunning = false;
  #drawFailed = false;

  /** `process`: also the Node process's own figures (CPU, memory, event-loop lag, GC). */
  constructor(opts: { process?: boolean } = {}) {
    const registers = [this.registry];
    this.#betsStored = new Counter({ name: `${PREFIX}bets_stored_total`, help: 'Bets stored (acknowledged STORED)', registers });
    this.#batches = new Counter({
      name: `${PREFIX}batches_total`,
      help: 'BATCH frames answered, by the BATCH_ACK status',
      labelNames: ['result'],
      registers,
    });
    for (const result of RESULT_OF.values()) this.#batches.inc({ result }, 0);
    this.#ackLatency = new Histogram({
      name: `${PREFIX}ack_latency_seconds`,
      help: "From a batch's frame read off the socket to its BATCH_ACK written (a run of batches: from its first frame)",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#connections = new Gauge({
      name: `${PREFIX}connections`,
      help: 'Open connections: unbound (no agency yet: before HELLO, a health probe) or bound to an agency',
      labelNames: ['state'],
      registers,
    });
    for (const state of ['unbound', 'bound']) this.#connections.set({ state }, 0);
    this.#draws = new Counter({ name: `${PREFIX}draws_total`, help: 'Draw tasks ended, by result', labelNames: ['result'], registers });
    for (const result of ['success', 'fail']) this.#draws.inc({ result }, 0);
    this.#drawSeconds = new Gauge({ name: `${PREFIX}draw_duration_seconds`, help: 'How long the last successful draw took', registers });
    this.#drawScanned = new Gauge({ name: `${PREFIX}draw_bets_scanned`, help: 'Bets the last successful draw read', registers });
    this.#fsync = new Histogram({
      name: `${PREFIX}fsync_seconds`,
      help: "Per group commit (one store task), the pool worker's flushes to the disk: the bets file's fdatasync, the wait for the write's turn, then the journal records written and flushed (SERVER_FSYNC on)",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.#scraped(registers);
    if (opts.process === true) collectDefaultMetrics({ register: this.registry });
  }

  /** Gauges computed at scrape time from the draw (set by watchDraw). */
  #scraped(registers: Registry[]): void {
    const metrics = this;
    const view = (): DrawView | null => metrics.#view;
    new Gauge({
      name: `${PREFIX}agencies_finished`,
      help: 'Agencies that sent FINISHED',
      registers,
      collect() {
        this.set(view()?.finished ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}agencies_expected`,
      help: 'Agencies the draw waits for (SERVER_AGENCIES)',
      registers,
      collect() {
        this.set(view()?.expected ?? 0);
      },
    });
    new Gauge({
      name: `${PREFIX}draw_state`,
      help: 'The draw: 1 for its current state (waiting for agencies, running, done, failed and to be started again)',
      labelNames: ['state'],
      registers,
      collect() {
        const now = metrics.drawState;
        for (const state of Object.values(DrawState)) this.set({ state }, state === now ? 1 : 0);
      },
    });
  }

  get drawState(): DrawState {
    if (this.#view?.drawn === true) return DrawState.DONE;
    if (this.#drawRunning) return DrawState.RUNNING;
    return this.#drawFailed ? DrawState.FAILED : DrawState.WAITING;
  }

  /** Hook (handlers/batch.ts): a run's acks were written; `receivedAt` is when its first frame was read (performance.now()). */
  acked(acks: readonly BatchAckDTO[], receivedAt: number): void {
    const seconds = (performance.now() - receivedAt) / 1000;
    for (const ack of acks) {
      this.#batches.inc({ result: RESULT_OF.get(ack.status) ?? String(ack.status) });
      if (ack.status === AckStatus.STORED) this.#betsStored.inc(ack.count);
      this.#ackLatency.observe(seconds);
    }
  }

  /** Hooks (session.ts): a connection opened (unbound), was bound to an agency, closed. */
  connectionOpened(): void {
    this.#connections.inc({ state: 'unbound' });
  }
  connectionBound(): void {
    this.#connections.dec({ state: 'unbound' });
    this.#connections.inc({ state: 'bound' });
  }
  connectionClosed(bound: boolean): void {
    this.#connections.dec({ state: bound ? 'bound' : 'unbound' });
  }

  /** Hook (the pool's onFsync): a group commit's flushes took `seconds`, as the worker reported in its task result. */
  fsyncTook(seconds: number): void {
    this.#fsync.observe(seconds);
  }

  /** The finished set and whether the draw is done are read from `view` at each scrape. */
  watchDraw(view: DrawView): void {
    this.#view = view;
  }

  /** Times and counts one draw started by this server (server.ts hands this to Draw as its DrawTimer). */
  readonly timeDraw = async (run: () => Promise<DrawSummary>): Promise<DrawSummary> => {
    const started = performance.now();
    this.#drawRunning = true;
    try {
      const result = await run();
      this.#drawSeconds.set((performance.now() - started) / 1000);
      this.#drawScanned.set(result.bets);
      this.#draws.inc({ result: 'success' });
      this.#drawFailed = false;
      return result;
    } catch (err) {
      this.#draws.inc({ result: 'fail' });
      this.#drawFailed = true;
      throw err;
    } finally {
      this.#drawRunning = false;
    }
  };

  /** The text exposition format, as served on /metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
