/**
 * One agency's run: HELLO, answer the CHALLENGE, and from WELCOME's `next` stream the rest of
 * the CSV in batches (SEND_WINDOW in flight, acks in order), send FINISHED, then ask for the
 * winners (the server answers once the draw has happened). It speaks through a Connection
 * over whatever Duplex the Dialer returns, so the tests drive it over `stream.duplexPair()`.
 * `stop()` (SIGTERM) ends reading, closes the file, then the socket.
 *
 * Riding out a server restart: when the connection is lost (reset, EOF, ERROR SHUTTING_DOWN)
 * or the server answers OUT_OF_ORDER, the run reconnects with backoff for up to
 * server.reconnectTimeout and resumes where the new WELCOME says: every bet the server holds
 * is skipped, none it lacks. With several servers (server.address `h1:p1,h2:p2`), each attempt
 * goes to the next one in turn (the dialer's round robin), so a client whose server died
 * moves to another that shares its storage. Nothing of a connection outlives it: each one gets a fresh
 * reader of the file and a fresh BatchSender.
 */
import type { Logger } from '../shared/logging/logger.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { MessageType, SEND_WINDOW, type WelcomeDTO } from '../shared/protocol/messages.js';
import { retryWithBackoff, withDeadline } from '../shared/util/async.js';
import { BatchSender, type SendTally } from './batch-sender.js';
import { readAgencyBetChunks } from './bets-reader.js';
import type { ClientConfig } from './config.js';
import { Connection } from './connection.js';
import { configuredDialer, type Dialer } from './dial.js';
import { ConnectTimeoutError, ServerGoneError, busyHint, resumable, retryable } from './errors.js';
import { handshake } from './handshake.js';
import { queryWinners } from './winners-query.js';

export interface RunSummary extends SendTally {
  /** Bets not sent because a WELCOME said the server already held them (no ack of this run for them). */
  resumed: number;
  badRows: number;
  /** null until the WINNERS came. */
  winners: string[] | null;
}

/** One connection attempt never waits longer than this, whatever is left of server.connectTimeout. */
const DIAL_ATTEMPT_MAX_MS = 5000;
/** How long the first connection retries every 10 ms before its delay grows: a server's start. */
const BIND_STEADY_MS = 300;

export class AgencyClient {
  readonly #config: ClientConfig;
  readonly #log: Logger;
  readonly #dial: Dialer;
  readonly #abort = new AbortController();
  #conn: Connection | null = null;
  readonly #summary: RunSummary = {
    sent: 0,
    duplicates: 0,
    written: 0,
    batches: 0,
    rejected: 0,
    resumed: 0,
    badRows: 0,
    winners: null,
  };
  /** Bets the server is known to have consumed (a WELCOME's `next`, or an ack), and of those, refused. */
  #known = 0;
  #knownRefused = 0;
  /** Bad rows are reported once, though each connection reads the file again. */
  #badRowsUpTo = 0;
  /** `host:port` of the server of the latest connection attempt. */
  #target: string;
  /** Settles once the data file is closed (at once while it has not been opened). */
  #fileClosed: Promise<void> = Promise.resolve();
  /** Settles once the latest socket close is logged (at once while none was started). */
  #socketClosed: Promise<void> = Promise.resolve();
  #stopped: Promise<void> | null = null;

  constructor(config: ClientConfig, log: Logger, dial: Dialer = configuredDialer(config)) {
    this.#config = config;
    this.#log = log;
    this.#dial = dial;
    this.#target = `${config.host}:${config.port}`;
  }

  /** The server the next attempt goes to, as the logs write it (host/port: a log reader keeps what follows a value's last ':'). */
  #upcoming(): string {
    return shown(this.#dial.upcoming?.() ?? this.#target);
  }

  get stopping(): boolean {
    return this.#abort.signal.aborted;
  }

  /** The run's figures so far: what the exit line reports, however the run ends. */
  get summary(): Readonly<RunSummary> {
    return this.#summary;
  }

  /** The whole run; once stop() was called it ends without an error, whatever it was doing. */
  async run(): Promise<RunSummary> {
    try {
      let session = await this.#bind();
      for (;;) {
        try {
          return await this.#runOn(session.conn, session.welcome);
        } catch (err) {
          if (this.stopping || !resumable(err as Error)) throw err;
          this.#log.warn({ action: 'conexion', result: 'fail', error: (err as Error).message });
          await this.#closeSocket();
          session = await this.#reconnect();
        }
      }
    } catch (err) {
      if (this.stopping) return this.#summary;
      throw err;
    }
  }

  /** The rest of the run on one connection: the bets from WELCOME's `next`, FINISHED, the winners. */
  async #runOn(conn: Connection, welcome: WelcomeDTO): Promise<RunSummary> {
    this.#summary.resumed += Math.max(0, welcome.next - this.#known);
    this.#known = Math.max(this.#known, welcome.next);
    await this.#sendBets(conn, welcome.next);
    if (this.stopping) return this.#summary;
    await conn.send(encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: this.#config.id }));
    const ack = await conn.expect(MessageType.FINISHED_ACK);
    this.#log.info({ action: 'notificacion_enviada', result: 'success', terminadas: ack.finished, esperadas: ack.expected });
    const c = this.#config;
    this.#summary.winners = await queryWinners(
      conn,
      { agency: c.id, timeoutMs: c.winnersTimeoutMs, signal: this.#abort.signal, log: this.#log },
      ack,
    );
    this.#log.info({ action: 'consulta_ganadores', result: 'success', cant_ganadores: this.#summary.winners.length });
    await this.#closeSocket();
    return this.#summary;
  }

  /**
   * Connects and says HELLO, retrying with backoff (10 ms for the first BIND_STEADY_MS, then
   * growing by half per failure, up to 2 s) within
   * server.connectTimeout while the server cannot be reached, is restarting, or still holds
   * this agency for an earlier connection of ours (AGENCY_BUSY). A server that never answers
   * HELLO times out.
   */
  async #bind(): Promise<{ conn: Connection; welcome: WelcomeDTO }> {
    const c = this.#config;
    try {
      // Agencies usually start with the server: steady retries while it starts find it soon
      // after it listens, where a grown delay could keep a large agency waiting well past it.
      return await retryWithBackoff((_, msLeft) => this.#hello(msLeft), {
        initialMs: 10,
        steadyMs: BIND_STEADY_MS,
        factor: 1.5,
        maxMs: 2000,
        timeoutMs: c.connectTimeoutMs,
        signal: this.#abort.signal,
        retryable,
        hintMs: busyHint,
        onRetry: (err, attempt, delay) =>
          this.#log.info({
            action: 'connect',
            result: 'in_progress',
            intento: attempt,
            espera_ms: delay,
            servidor: this.#upcoming(),
            error: err.message,
          }),
      });
    } catch (err) {
      if (!this.stopping && retryable(err as Error))
        throw new ConnectTimeoutError(this.#target, c.connectTimeoutMs, (err as Error).message);
      throw err;
    }
  }

  /**
   * After losing the server: connects again with backoff (50 ms doubling to 1 s) for up to
   * server.reconnectTimeout, one `reconexion` line per attempt. A server that does not come
   * back ends the run with ServerGoneError, saying how many bets are known to be stored.
   */
  async #reconnect(): Promise<{ conn: Connection; welcome: WelcomeDTO }> {
    const c = this.#config;
    try {
      const session = await retryWithBackoff(
        (attempt, msLeft) => {
          this.#log.info({ action: 'reconexion', result: 'in_progress', intento: attempt, servidor: this.#upcoming() });
          return this.#hello(msLeft);
        },
        { initialMs: 50, maxMs: 1000, timeoutMs: c.reconnectTimeoutMs, signal: this.#abort.signal, retryable, hintMs: busyHint },
      );
      this.#log.info({ action: 'reconexion', result: 'success', siguiente: session.welcome.next });
      return session;
    } catch (err) {
      if (this.stopping || !(retryable(err as Error) || err instanceof ConnectTimeoutError)) throw err;
      const stored = this.#known - this.#knownRefused;
      throw new ServerGoneError(this.#target, c.reconnectTimeoutMs, stored, (err as Error).message);
    }
  }

  /** One attempt: a fresh Duplex, HELLO, CHALLENGE → PROOF, WELCOME within `msLeft`. A failed attempt closes its connection. */
  async #hello(msLeft: number): Promise<{ conn: Connection; welcome: WelcomeDTO }> {
    const c = this.#config;
    const started = Date.now();
    this.#target = this.#dial.upcoming?.() ?? this.#target;
    const target = this.#target;
    const stream = await this.#dial(Math.min(DIAL_ATTEMPT_MAX_MS, Math.max(100, msLeft)), this.#abort.signal);
    if (this.stopping) {
      stream.destroy();
      this.#abort.signal.throwIfAborted();
    }
    const conn = new Connection(stream);
    this.#conn = conn;
    try {
      const welcome = await withDeadline(
        handshake(conn, c.id, c.key),
        msLeft - (Date.now() - started),
        () => new ConnectTimeoutError(target, c.connectTimeoutMs, 'no WELCOME in reply to HELLO'),
      );
      const finished = welcome.finished ? 'si' : 'no';
      this.#log.info({
        action: 'connect',
        result: 'success',
        servidor: shown(target),
        siguiente: welcome.next,
        terminada: finished,
      });
      return { conn, welcome };
    } catch (err) {
      if (this.#conn === conn) this.#conn = null;
      await conn.close();
      throw err;
    }
  }

  async #sendBets(conn: Connection, from: number): Promise<void> {
    const c = this.#config;
    let fileClosed = (): void => {};
    this.#fileClosed = new Promise((resolve) => {
      fileClosed = resolve;
    });
    const chunks = readAgencyBetChunks({
      path: c.dataFile,
      agency: c.id,
      signal: this.#abort.signal,
      onBadRow: (bad) => {
        if (bad.line <= this.#badRowsUpTo) return;
        this.#badRowsUpTo = bad.line;
        this.#summary.badRows++;
        this.#log.warn({ action: 'apuesta_invalida', result: 'fail', archivo: bad.file, linea: bad.line, error: bad.error });
      },
      onClose: () => {
        this.#log.info({ action: 'close_file', result: 'success', archivo: c.dataFile });
        fileClosed();
      },
    });
    const sender = new BatchSender(conn, {
      window: SEND_WINDOW,
      maxAmount: c.maxAmount,
      log: this.#log,
      tally: this.#summary,
      from,
      onConsumed: (end, refused) => {
        this.#known = Math.max(this.#known, end);
        this.#knownRefused += refused;
      },
      signal: this.#abort.signal,
    });
    await sender.sendAll(chunks);
  }

  /**
   * Closes the current connection and logs it. A call while an earlier close is under way (a
   * SIGTERM as the run closes after the winners) waits for that close and its line, so the
   * exit line never comes before them.
   */
  #closeSocket(): Promise<void> {
    const conn = this.#conn;
    if (conn !== null) {
      this.#conn = null;
      this.#socketClosed = conn.close().then(() => {
        this.#log.info({ action: 'close_socket', result: 'success' });
      });
    }
    return this.#socketClosed;
  }

  /**
   * SIGTERM: stop reading, close the file, then the socket (nothing is read once the file is
   * closed; what is in flight is left to the socket's close). Idempotent.
   */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#abort.abort();
      await this.#fileClosed;
      await this.#closeSocket();
    })();
    return this.#stopped;
  }
}

/** `host:port` as a log value: `host/port`. */
function shown(address: string): string {
  return address.replace(/:(\d+)$/, '/$1');
}
