/**
 * StorageBackend on PostgreSQL, for one server among several sharing a database. Every
 * decision that must hold across servers is taken inside a transaction under a row lock
 * (store.ts, draw.ts, sessions.ts); this class only holds connections, groups commits,
 * caches the winners once drawn and turns notifications into wake-ups. See
 * docs/architecture.md, "PostgreSQL backend".
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { deferred, settlesWithin, type Deferred } from '../../../shared/util/async.js';
import {
  StorageClosedError,
  type CloseOptions,
  UnknownAgencyError,
  type AgencyClaim,
  type BatchOutcome,
  type DrawSummary,
  type FinishMark,
  type Progress,
  type RunIn,
  type StorageBackend,
} from '../backend.js';
import { checkRun, decodeRun } from './admission.js';
import { drawOnce, DrawEvent, loadWinners, markFinished, readProgress } from './draw.js';
import { GroupCommit } from './group-commit.js';
import { Listener } from './listener.js';
import { clientConfig, resolveOptions, type Options, type PostgresBackendOptions } from './options.js';
import { prepareSchema } from './schema.js';
import { claimAgency, currentEpochs, decodeClaim, releaseAgency } from './sessions.js';
import { storeGroup } from './store.js';
import { stopped, transaction, withClient, withRetry, type RetryPolicy } from './transient.js';

export type { PostgresBackendOptions } from './options.js';

export class PostgresBackend implements StorageBackend {
  readonly kind = 'postgres' as const;
  readonly #o: Options;
  readonly #pool: pg.Pool;
  readonly #channels: { draw: string; session: string };
  readonly #policy: RetryPolicy;
  /** Runs wait encoded: they are decoded only when their group is taken, so a long queue costs no Bet objects. */
  readonly #commits: GroupCommit<RunIn, BatchOutcome[]>;
  readonly #listener: Listener;
  /** Epoch of each agency claimed here and not yet known to be taken over. */
  readonly #held = new Map<number, number>();
  readonly #onReplaced = new Set<(agency: number, epoch: number) => void>();
  readonly #onDrawn = new Set<(summary: DrawSummary) => void>();
  /** Aborted by a close past its deadline: retries in progress give up. */
  readonly #abort = new AbortController();
  #winners: Map<number, string[]> | null = null;
  #drawing: Promise<DrawSummary> | null = null;
  #progressing: Promise<Progress> | null = null;
  #waiters: Deferred<void> | null = null;
  #closing: Promise<void> | null = null;

  /** Connects, applies the migrations, starts listening; a database that stays unreachable fails it. */
  static async open(options: PostgresBackendOptions): Promise<PostgresBackend> {
    const backend = new PostgresBackend(options);
    const { startTimeoutMs, stop } = backend.#o;
    try {
      const applied = await withRetry('opening the database', { retryMs: startTimeoutMs, signal: stop }, () =>
        withClient(backend.#pool, (client) => prepareSchema(client, backend.#o.schema, backend.#o.agencies)),
      );
      if (applied.length > 0) backend.#o.log?.info({ action: 'db_migrate', result: 'success', versions: applied.join(',') });
      await backend.#listener.start(startTimeoutMs, stop);
    } catch (err) {
      await backend.close();
      throw stopped(err, stop);
    }
    return backend;
  }

  private constructor(options: PostgresBackendOptions) {
    const o = resolveOptions(options);
    this.#o = o;
    this.#channels = { draw: `${o.schema}_draw`, session: `${o.schema}_session` };
    this.#pool = new pg.Pool({ ...clientConfig(o, 'loteria'), max: o.maxConnections });
    // An idle pooled client whose server went away reports here; the pool drops it.
    this.#pool.on('error', (err) => o.log?.warn({ action: 'db_pool', result: 'client_lost', error: err.message }));
    this.#policy = {
      retryMs: o.retryMs,
      signal: this.#abort.signal,
      onRetry: (err, n) => o.log?.warn({ action: 'db_retry', result: 'in_progress', attempt: n, error: err.message }),
    };
    this.#commits = new GroupCommit(this.#storeGroup.bind(this), {
      maxInFlight: o.maxInFlight,
      maxWeight: o.maxGroupBets,
      weigh: (run) => run.batches.reduce((n, b) => n + b.count, 0),
    });
    this.#listener = new Listener(
      clientConfig(o, 'loteria-listen'),
      [this.#channels.draw, this.#channels.session],
      { onNotification: (ch, payload) => this.#onNotification(ch, payload), onListening: (again) => this.#onListening(again) },
      o.log,
    );
  }

  get agencies(): number {
    return this.#o.agencies;
  }
  get serverId(): string {
    return this.#o.serverId;
  }

  async claim(agency: number): Promise<AgencyClaim> {
    this.#checkOpen('claiming an agency');
    this.#checkAgency(agency);
    const { serverId, agencies } = this.#o;
    const claim = await this.#tx('claiming an agency', (c) => claimAgency(c, agency, serverId, this.#channels.session, agencies));
    this.#taken(agency, claim.epoch);
    this.#held.set(agency, claim.epoch);
    return claim;
  }

  async release(agency: number, epoch: number): Promise<void> {
    if (this.#held.get(agency) === epoch) this.#held.delete(agency);
    if (this.#closing !== null) return;
    await withRetry('releasing an agency', this.#policy, () => releaseAgency(this.#pool, agency, epoch));
  }

  onReplaced(listener: (agency: number, epoch: number) => void): () => void {
    this.#onReplaced.add(listener);
    return () => this.#onReplaced.delete(listener);
  }

  onDrawn(listener: (summary: DrawSummary) => void): () => void {
    this.#onDrawn.add(listener);
    return () => this.#onDrawn.delete(listener);
  }

  storeRuns(runs: readonly RunIn[]): Promise<BatchOutcome[][]> {
    try {
      this.#checkOpen('storing batches');
      for (const run of runs) {
        this.#checkAgency(run.agency);
        checkRun(run);
      }
      return Promise.all(runs.map((run) => this.#commits.submit(run)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async markFinished(agency: number, epoch: number): Promise<FinishMark> {
    this.#checkOpen('recording FINISHED');
    this.#checkAgency(agency);
    return this.#tx('recording FINISHED', (c) => markFinished(c, agency, epoch, this.#channels.draw));
  }

  /** Every PING asks this: callers while one read is in flight share it, so pings take at most one connection. */
  progress(): Promise<Progress> {
    this.#progressing ??= withRetry('reading the progress', this.#policy, () => withClient(this.#pool, readProgress)).finally(() => {
      this.#progressing = null;
    });
    return this.#progressing;
  }

  draw(): Promise<DrawSummary> {
    // One token per call, the same for each of its retries (drawOnce).
    const token = randomUUID();
    this.#drawing ??= this.#tx('the draw', (c) => drawOnce(c, this.#o.serverId, this.#channels.draw, token)).then(
      (row): DrawSummary => {
        this.#drawing = null;
        this.#settleWaiters(null);
        const summary = { bets: row.bets, winners: row.winners, drawnBy: row.drawnBy, ranHere: row.ranNow };
        for (const listener of this.#onDrawn) listener(summary);
        return summary;
      },
      (err: Error) => {
        this.#drawing = null;
        // Held queries are answered (NOT_READY) rather than left waiting on a draw that failed here.
        this.#settleWaiters(err);
        throw err;
      },
    );
    return this.#drawing;
  }

  async winners(agency: number): Promise<string[] | null> {
    this.#checkAgency(agency);
    this.#winners ??= await withRetry('reading the winners', this.#policy, () => loadWinners(this.#pool));
    return this.#winners === null ? null : (this.#winners.get(agency) ?? []);
  }

  waitForDraw(): Promise<void> {
    if (this.#closing !== null) return Promise.reject(new StorageClosedError('waiting for the draw'));
    if (this.#winners !== null) return Promise.resolve();
    if (this.#waiters === null) {
      this.#waiters = deferred();
      void this.#checkDraw();
    }
    return this.#waiters.promise;
  }

  /**
   * Lets the group commits in flight end (within `deadlineMs`: past it, their retries are
   * abandoned and their runs fail unacknowledged), then ends the listener and the pool.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    this.#closing ??= (async () => {
      this.#settleWaiters(new StorageClosedError('waiting for the draw'));
      const drained = (async () => {
        await this.#commits.close();
        await this.#drawing?.catch(() => undefined);
      })();
      const inTime = opts.deadlineMs === undefined ? await drained.then(() => true) : await settlesWithin(drained, opts.deadlineMs);
      if (!inTime) this.#abort.abort(new StorageClosedError('retrying'));
      // LISTEN on a database that accepts connections but does not answer has no timeout of its own.
      await settlesWithin(this.#listener.close(), 1_000);
      // A connection stuck on a database that does not answer must not hold the shutdown.
      const ended = this.#pool.end();
      if (inTime) await ended;
      else await settlesWithin(ended, 1_000);
      this.#o.log?.info({ action: 'close_storage', result: 'success', almacen: 'postgres', forzado: inTime ? 'no' : 'si' });
    })();
    return this.#closing;
  }

  async #storeGroup(runs: RunIn[]): Promise<BatchOutcome[][]> {
    // Decoded before BEGIN: no row lock is held while bets are parsed.
    const decoded = runs.map(decodeRun);
    return this.#tx('storing batches', (c) => storeGroup(c, decoded, this.#o.agencies));
  }

  #tx<T>(what: string, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return transaction(this.#pool, what, this.#policy, body);
  }

  #checkOpen(what: string): void {
    if (this.#closing !== null) throw new StorageClosedError(what);
  }

  #checkAgency(agency: number): void {
    if (!Number.isInteger(agency) || agency < 1 || agency > this.#o.agencies) throw new UnknownAgencyError(agency, this.#o.agencies);
  }

  /** A claim of `agency` at `epoch` exists: an older session held here is replaced (said once). */
  #taken(agency: number, epoch: number): void {
    const held = this.#held.get(agency);
    if (held === undefined || held >= epoch) return;
    this.#held.delete(agency);
    for (const listener of this.#onReplaced) listener(agency, epoch);
  }

  #onNotification(channel: string, payload: string): void {
    if (channel === this.#channels.session) {
      const claim = decodeClaim(payload);
      if (claim !== null) this.#taken(claim.agency, claim.epoch);
    } else if (payload === DrawEvent.DONE) {
      this.#settleWaiters(null);
    } else if (payload === DrawEvent.ALL_FINISHED && this.#waiters !== null) {
      // The completing server draws; drawing here too covers its death: this call waits on
      // the lottery row lock and finds the draw done, or draws if that server's transaction died.
      this.#drawForWaiters();
    }
  }

  /** After a (re)connection of the listener: what was missed meanwhile is read once. */
  #onListening(reconnected: boolean): void {
    if (this.#waiters !== null) void this.#checkDraw();
    if (!reconnected || this.#held.size === 0) return;
    currentEpochs(this.#pool, [...this.#held.keys()]).then(
      (epochs) => {
        for (const [agency, epoch] of epochs) this.#taken(agency, epoch);
      },
      (err: Error) => this.#o.log?.warn({ action: 'db_resync', result: 'fail', error: err.message }),
    );
  }

  /** One read when a wait starts or the listener is back: done, or due (then draw), or neither (wait for a notification). */
  async #checkDraw(): Promise<void> {
    try {
      const p = await this.progress();
      if (p.drawn) this.#settleWaiters(null);
      else if (p.finished === p.expected) this.#drawForWaiters();
    } catch (err) {
      this.#settleWaiters(err as Error);
    }
  }

  /** draw() settles the waiters either way. */
  #drawForWaiters(): void {
    this.draw().catch(() => undefined);
  }

  #settleWaiters(err: Error | null): void {
    const waiters = this.#waiters;
    this.#waiters = null;
    if (err === null) waiters?.resolve();
    else waiters?.reject(err);
  }
}
