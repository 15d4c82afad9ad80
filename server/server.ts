/**
 * The acceptor and its resources: storage file, finished counter, worker pool, sessions.
 * `close()` stops accepting, drains sessions (their in-flight batches are acknowledged),
 * closes the pool and the storage file, logging each resource; it is idempotent.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { LogFormat, type Logger } from '../shared/logging/logger.js';
import type { ServerConfig } from './config.js';
import { Lottery } from './lottery.js';
import { BetPool } from './pool/bet-pool.js';
import { Session } from './session.js';
import { ProtectedNotificationCounter } from './storage/notification-counter.js';
import { ProtectedStorage, type StorageHandle } from './storage/protected-storage.js';

export class LotteryServer {
  readonly #config: ServerConfig;
  readonly #log: Logger;
  readonly #storage: StorageHandle;
  readonly #pool: BetPool;
  readonly #lottery: Lottery;
  readonly #server: Server;
  readonly #sessions = new Set<Session>();
  #nextSession = 1;
  #closing: Promise<void> | null = null;

  constructor(config: ServerConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
    this.#storage = ProtectedStorage.open(config.storagePath);
    const counterSab = ProtectedNotificationCounter.allocate(config.agencies);
    this.#pool = new BetPool({
      workers: config.workers,
      init: { storage: this.#storage, counter: counterSab, logLevel: config.logLevel, logFormat: process.env.LOG_FORMAT ?? LogFormat.TEXT },
    });
    this.#lottery = new Lottery(this.#pool, new ProtectedNotificationCounter(counterSab), log);
    this.#server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    // Every agency plus room for reconnects and health probes; beyond that, refuse.
    this.#server.maxConnections = config.agencies * 2 + 64;
  }

  get lottery(): Lottery {
    return this.#lottery;
  }

  listen(): Promise<AddressInfo> {
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
    const session = new Session(this.#nextSession++, socket, this.#lottery, this.#log);
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
    const inTime = await withDeadline(drained, left());
    if (!inTime) {
      const stuck = sessions.filter((s) => !s.closed);
      log.warn({
        action: 'close_sessions',
        result: 'fail',
        sesiones: stuck.length,
        error: `still busy after ${this.#config.drainTimeoutMs} ms (a batch in the pool or a peer not reading); destroying their connections, unacknowledged batches are not stored`,
      });
      for (const s of stuck) s.destroy();
      await withDeadline(drained, 1000);
    }
    await withDeadline(acceptorClosed, 1000);
    log.info({ action: 'close_acceptor', result: 'success', puerto: port });

    await withDeadline(this.#lottery.drawSettled, left());
    const poolClosed = await withDeadline(this.#pool.close(), left());
    if (!poolClosed) await this.#pool.close(true);
    log.info({ action: 'close_pool', result: 'success', workers: this.#pool.workers, forzado: poolClosed ? 'no' : 'si' });

    ProtectedStorage.close(this.#storage);
    log.info({ action: 'close_storage', result: 'success', archivo: this.#storage.path });
  }
}

/** True when `p` settles within `ms`; never rejects. */
async function withDeadline(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
