/**
 * The acceptor and its resources: storage file and journal, finished counter, worker pool,
 * sessions. Construction first recovers the durable state beside the bets file (throwing
 * RecoveryError when it cannot be trusted) and starts from it. `close()` stops accepting,
 * drains sessions (their in-flight batches are acknowledged), closes the pool, then flushes
 * and closes the bets file and the journal, logging each resource; it is idempotent.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { LogFormat, type Logger } from '../shared/logging/logger.js';
import { CLOSE_GRACE_MS } from '../shared/net/stream-io.js';
import { settlesWithin } from '../shared/util/async.js';
import type { ServerConfig } from './config.js';
import { Draw } from './draw.js';
import type { Services } from './handlers/context.js';
import { Ingest } from './ingest.js';
import { MetricsEndpoint } from './metrics/metrics-endpoint.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { BetPool } from './pool/bet-pool.js';
import { AgencyRegistry } from './registry.js';
import { Session } from './session.js';
import { recoverDurableState } from './storage/durable-state.js';
import { AgencyAuth } from './auth/agency-auth.js';
import { Gate } from './gate.js';
import { ProtectedStorage, type StorageHandle } from './storage/protected-storage.js';
import { AgencyProgress } from './sync/agency-progress.js';
import { ProtectedNotificationCounter } from './sync/notification-counter.js';

export class LotteryServer {
  readonly #config: ServerConfig;
  readonly #log: Logger;
  readonly #storage: StorageHandle;
  readonly #pool: BetPool;
  readonly #services: Services;
  readonly #server: Server;
  readonly #gate: Gate;
  readonly #sessions = new Set<Session>();
  readonly #metrics: ServerMetrics;
  #metricsEndpoint: MetricsEndpoint | null = null;
  #nextSession = 1;
  #closing: Promise<void> | null = null;

  constructor(config: ServerConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
    const recovered = recoverDurableState(config.storagePath, config.agencies, log);
    const next = recovered.agencies.map((a) => a.next);
    this.#storage = ProtectedStorage.open(config.storagePath, { fsync: config.fsync, next });
    const counterSab = ProtectedNotificationCounter.allocate(config.agencies);
    const counter = new ProtectedNotificationCounter(counterSab);
    recovered.agencies.forEach((a, i) => {
      if (a.finished) counter.markFinished(i + 1);
    });
    const metrics = new ServerMetrics({ process: config.metricsPort !== null });
    this.#metrics = metrics;
    this.#pool = new BetPool({
      workers: config.workers,
      init: { storage: this.#storage, counter: counterSab, logLevel: config.logLevel, logFormat: process.env.LOG_FORMAT ?? LogFormat.TEXT },
      onFsync: (seconds) => metrics.fsyncTook(seconds),
    });
    this.#services = {
      ingest: new Ingest(this.#pool, counter, new AgencyProgress(this.#storage.progress!)),
      draw: new Draw(this.#metrics.timeDraws(this.#pool), counter, log, recovered.draw),
      registry: new AgencyRegistry(config.agencies),
      auth: new AgencyAuth(config.agencyKeys),
      metrics: this.#metrics,
    };
    this.#metrics.watchDraw(this.#services.draw);
    // Authenticated: every agency, and as many replaced connections still draining, plus a few.
    const maxAuthenticated = config.agencies * 2 + 8;
    this.#gate = new Gate(
      {
        maxUnauthenticated: config.maxUnauthenticated,
        maxUnauthenticatedPerSource: config.maxUnauthenticatedPerSource,
        maxAuthenticated,
        authTimeoutMs: config.authTimeoutMs,
      },
      config.tls,
      log,
    );
    this.#server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    // A last resort only: the gate refuses (with ERROR BUSY) long before this many sockets.
    this.#server.maxConnections = config.maxUnauthenticated + maxAuthenticated + Gate.MAX_REFUSING;
  }

  /** Listens for clients, then (SERVER_METRICS_PORT set) starts the metrics endpoint and logs its address. */
  async listen(): Promise<AddressInfo> {
    const address = await this.#listen();
    const { metricsHost, metricsPort } = this.#config;
    if (metricsPort !== null && this.#closing === null) {
      const endpoint = await MetricsEndpoint.start(this.#metrics, metricsHost, metricsPort);
      // close() began meanwhile and passed the endpoint's turn: it is closed here instead.
      if (this.#closing !== null) await endpoint.close();
      else this.#metricsEndpoint = endpoint;
      const at = endpoint.address;
      this.#log.info({ action: 'metrics', result: 'success', host: at.address, puerto: at.port, ruta: '/metrics' });
    }
    return address;
  }

  #listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#config.host, port: this.#config.port, backlog: this.#config.backlog }, () => {
        this.#server.off('error', reject);
        this.#server.on('error', (err) => this.#log.error({ action: 'acceptor', result: 'fail', error: err.message }));
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  #accept(socket: Socket): void {
    if (this.#closing !== null) {
      socket.destroy();
      return;
    }
    const admitted = this.#gate.admit(socket);
    if (admitted === null) return;
    const { stream, ticket, source } = admitted;
    const { authTimeoutMs, idleTimeoutMs } = this.#config;
    const session = new Session(this.#nextSession++, stream, this.#services, this.#log, { ticket, source, authTimeoutMs, idleTimeoutMs });
    this.#sessions.add(session);
    socket.once('close', () => this.#sessions.delete(session));
  }

  close(): Promise<void> {
    if (this.#closing === null) this.#closing = this.#close();
    return this.#closing;
  }

  /**
   * One deadline (SERVER_DRAIN_TIMEOUT) bounds the whole drain: sessions still busy when it
   * passes (a batch stuck in the pool, or a peer that does not read its replies) are
   * destroyed, and the pool is then forced. So shutdown ends within the deadline plus a
   * moment, inside Docker's 10 s grace period.
   */
  async #close(): Promise<void> {
    const log = this.#log;
    const deadline = Date.now() + this.#config.drainTimeoutMs;
    const left = (): number => Math.max(0, deadline - Date.now());
    const port = (this.#server.address() as AddressInfo | null)?.port ?? this.#config.port;
    const acceptorClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));

    const sessions = [...this.#sessions];
    const drained = Promise.all(
      sessions.map(async (s) => {
        await s.close(true);
        log.info({ action: 'close_session', result: 'success', sesion: s.id, agencia: s.agency });
      }),
    );
    const inTime = await settlesWithin(drained, left());
    if (!inTime) {
      const stuck = sessions.filter((s) => !s.closed);
      log.warn({
        action: 'close_sessions',
        result: 'fail',
        sesiones: stuck.length,
        error: `still busy after ${this.#config.drainTimeoutMs} ms (a batch in the pool or a peer not reading); destroying their connections, unacknowledged batches are not stored`,
      });
      for (const s of stuck) s.destroy();
      // A destroyed socket reports 'close' at once; the grace only bounds a surprise.
      await settlesWithin(drained, CLOSE_GRACE_MS);
    }
    await settlesWithin(acceptorClosed, CLOSE_GRACE_MS);
    log.info({ action: 'close_acceptor', result: 'success', puerto: port });
    if (this.#metricsEndpoint !== null) {
      await this.#metricsEndpoint.close();
      log.info({ action: 'close_metrics', result: 'success', puerto: this.#metricsEndpoint.address.port });
    }

    await settlesWithin(this.#services.draw.idle(), left());
    const poolClosed = await settlesWithin(this.#pool.close(), left());
    if (!poolClosed) await this.#pool.close(true);
    log.info({ action: 'close_pool', result: 'success', workers: this.#pool.workers, forzado: poolClosed ? 'no' : 'si' });

    // Flushed to the disk whatever SERVER_FSYNC says: nothing is left for recovery to cut.
    ProtectedStorage.close(this.#storage);
    log.info({ action: 'close_storage', result: 'success', archivo: this.#storage.path });
    log.info({ action: 'close_journal', result: 'success', archivo: this.#storage.journal?.path ?? '' });
  }
}
