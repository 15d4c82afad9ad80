/**
 * The acceptor and its resources: the storage backend (the bets file with its journal and
 * pool, or PostgreSQL: server/storage/open-storage.ts), the services every session shares,
 * the sessions. `open()` opens the backend first (file: recovery, throwing RecoveryError when
 * the files cannot be trusted; PostgreSQL: migrations) and starts from what it holds.
 * `close()` stops accepting, drains sessions (their in-flight batches are acknowledged), then
 * closes the backend (file: the pool, then the bets file and the journal flushed), logging
 * each resource; it is idempotent.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../shared/logging/logger.js';
import { CLOSE_GRACE_MS } from '../shared/net/stream-io.js';
import { settlesWithin } from '../shared/util/async.js';
import type { ServerConfig } from './config.js';
import { Draw } from './draw.js';
import type { Services } from './handlers/context.js';
import { Ingest } from './ingest.js';
import type { MetricsEndpoint } from './metrics/metrics-endpoint.js';
import type { ServerMetrics } from './metrics/server-metrics.js';
import { AgencyRegistry } from './registry.js';
import { Session } from './session.js';
import { AgencyAuth } from './auth/agency-auth.js';
import { Gate } from './gate.js';
import type { StorageBackend } from './storage/backend.js';
import { openStorage } from './storage/open-storage.js';

export class LotteryServer {
  readonly #config: ServerConfig;
  readonly #log: Logger;
  readonly #backend: StorageBackend;
  readonly #services: Services;
  readonly #server: Server;
  readonly #gate: Gate;
  readonly #sessions = new Set<Session>();
  /** Only with SERVER_METRICS_PORT: prom-client and node:http stay out of the other servers' start. */
  readonly #metrics: ServerMetrics | null;
  #metricsEndpoint: MetricsEndpoint | null = null;
  #nextSession = 1;
  #closing: Promise<void> | null = null;

  /**
   * Opens the storage backend, then builds the server on it (not listening yet); a draw left
   * pending starts now. `stop` aborted ends a wait for an unreachable database (StartStoppedError).
   */
  static async open(config: ServerConfig, log: Logger, stop?: AbortSignal): Promise<LotteryServer> {
    const metrics = config.metricsPort === null ? null : new (await import('./metrics/server-metrics.js')).ServerMetrics({ process: true });
    const backend = await openStorage(config, log, {
      ...(metrics === null ? {} : { onFsync: (seconds: number) => metrics.fsyncTook(seconds) }),
      ...(stop === undefined ? {} : { stop }),
    });
    let server: LotteryServer;
    try {
      server = new LotteryServer(config, log, backend, metrics);
    } catch (err) {
      await backend.close();
      throw err;
    }
    try {
      await server.#services.draw.resume();
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  private constructor(config: ServerConfig, log: Logger, backend: StorageBackend, metrics: ServerMetrics | null) {
    this.#config = config;
    this.#log = log;
    this.#backend = backend;
    this.#metrics = metrics;
    this.#services = {
      ingest: new Ingest(backend),
      draw: new Draw(backend, log, metrics?.timeDraw),
      registry: new AgencyRegistry(backend, log),
      auth: new AgencyAuth(config.agencyKeys),
      metrics: metrics ?? undefined,
    };
    metrics?.watchDraw(this.#services.draw);
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
    if (metricsPort !== null && this.#metrics !== null && this.#closing === null) {
      const { MetricsEndpoint } = await import('./metrics/metrics-endpoint.js');
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
    await settlesWithin(this.#services.registry.released(), left());
    // The backend logs what it closes (file: close_pool, close_storage, close_journal).
    await this.#backend.close({ deadlineMs: left() });
  }
}
