/**
 * One agency's run: say HELLO, stream the CSV in batches (BATCH_WINDOW in flight, acks in
 * order), send FINISHED, then ask for the winners (the server answers once the draw has
 * happened). It speaks through a Connection over whatever Duplex the Dialer returns, so the
 * tests drive it over `stream.duplexPair()`. `stop()` (SIGTERM) ends reading, closes the
 * file, then the socket.
 * Nothing of a connection outlives it: `#bind` makes a fresh one and `#sendBets` builds its
 * reader and BatchSender on it, so a reconnect that resumes where the server says (protocol
 * v2's WELCOME `next`) repeats the two on a new Duplex.
 */
import type { Logger } from '../shared/logging/logger.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { BATCH_WINDOW, ErrorCode, MessageType, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { retryWithBackoff, withDeadline } from '../shared/util/async.js';
import { BatchSender, type SendTally } from './batch-sender.js';
import { readAgencyBetChunks } from './bets-reader.js';
import type { ClientConfig } from './config.js';
import { Connection } from './connection.js';
import { DialError, tcpDialer, type Dialer } from './dial.js';
import { ConnectTimeoutError, ServerRefusedError, UnexpectedReplyError, WinnersTimeoutError } from './errors.js';

export interface RunSummary extends SendTally {
  badRows: number;
  /** null until the WINNERS came. */
  winners: string[] | null;
}

/** NOT_READY: the draw failed and the server starts it again; asked again after a wait. */
class NotReadyError extends Error {
  constructor(
    readonly finished: number,
    readonly expected: number,
  ) {
    super(`the draw is not ready: ${finished} of ${expected} agencies finished`);
  }
}

/** One connection attempt never waits longer than this, whatever is left of server.connectTimeout. */
const DIAL_ATTEMPT_MAX_MS = 5000;

export class AgencyClient {
  readonly #config: ClientConfig;
  readonly #log: Logger;
  readonly #dial: Dialer;
  readonly #abort = new AbortController();
  #conn: Connection | null = null;
  readonly #summary: RunSummary = { sent: 0, duplicates: 0, written: 0, batches: 0, rejected: 0, badRows: 0, winners: null };
  /** Settles once the data file is closed (at once while it has not been opened). */
  #fileClosed: Promise<void> = Promise.resolve();
  #stopped: Promise<void> | null = null;

  constructor(config: ClientConfig, log: Logger, dial: Dialer = tcpDialer(config.host, config.port)) {
    this.#config = config;
    this.#log = log;
    this.#dial = dial;
  }

  get stopping(): boolean {
    return this.#abort.signal.aborted;
  }

  /** The run's figures so far: what the exit line reports, however the run ends. */
  get summary(): Readonly<RunSummary> {
    return this.#summary;
  }

  async run(): Promise<RunSummary> {
    const conn = await this.#bind();
    await this.#sendBets(conn);
    if (this.stopping) return this.#summary;
    await conn.send(encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: this.#config.id }));
    const ack = await conn.expect(MessageType.FINISHED_ACK);
    this.#log.info({ action: 'notificacion_enviada', result: 'success', terminadas: ack.finished, esperadas: ack.expected });
    this.#summary.winners = await this.#queryWinners(conn, ack);
    this.#log.info({ action: 'consulta_ganadores', result: 'success', cant_ganadores: this.#summary.winners.length });
    await this.#closeSocket();
    return this.#summary;
  }

  /**
   * Connects and says HELLO, retrying with backoff (20 ms doubling to 2 s) within
   * server.connectTimeout while the server cannot be reached or still holds this agency for
   * an earlier connection of ours (AGENCY_BUSY). A server that never answers HELLO times out.
   */
  async #bind(): Promise<Connection> {
    const c = this.#config;
    const address = `${c.host}:${c.port}`;
    const retryable = (err: Error): boolean =>
      err instanceof DialError || (err instanceof ServerRefusedError && err.code === ErrorCode.AGENCY_BUSY);
    try {
      return await retryWithBackoff((_, msLeft) => this.#hello(msLeft), {
        initialMs: 20,
        maxMs: 2000,
        timeoutMs: c.connectTimeoutMs,
        signal: this.#abort.signal,
        retryable,
        onRetry: (err, attempt, delay) =>
          this.#log.info({ action: 'connect', result: 'in_progress', intento: attempt, espera_ms: delay, error: err.message }),
      });
    } catch (err) {
      if (!this.stopping && retryable(err as Error)) throw new ConnectTimeoutError(address, c.connectTimeoutMs, (err as Error).message);
      throw err;
    }
  }

  /** One attempt: a fresh Duplex, HELLO, WELCOME within `msLeft`. A failed attempt closes its connection. */
  async #hello(msLeft: number): Promise<Connection> {
    const c = this.#config;
    const started = Date.now();
    const stream = await this.#dial(Math.min(DIAL_ATTEMPT_MAX_MS, Math.max(100, msLeft)), this.#abort.signal);
    if (this.stopping) {
      stream.destroy();
      this.#abort.signal.throwIfAborted();
    }
    const conn = new Connection(stream);
    this.#conn = conn;
    try {
      await conn.send(encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: c.id }));
      const welcome = await withDeadline(
        conn.expect(MessageType.WELCOME),
        msLeft - (Date.now() - started),
        () => new ConnectTimeoutError(`${c.host}:${c.port}`, c.connectTimeoutMs, 'no WELCOME in reply to HELLO'),
      );
      this.#log.info({ action: 'connect', result: 'success', servidor: `${c.host}/${c.port}`, ultimo_lote: welcome.lastSeq });
      return conn;
    } catch (err) {
      if (this.#conn === conn) this.#conn = null;
      await conn.close();
      throw err;
    }
  }

  async #sendBets(conn: Connection): Promise<void> {
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
        this.#summary.badRows++;
        this.#log.warn({ action: 'apuesta_invalida', result: 'fail', archivo: bad.file, linea: bad.line, error: bad.error });
      },
      onClose: () => {
        this.#log.info({ action: 'close_file', result: 'success', archivo: c.dataFile });
        fileClosed();
      },
    });
    const sender = new BatchSender(conn, {
      window: BATCH_WINDOW,
      maxAmount: c.maxAmount,
      log: this.#log,
      tally: this.#summary,
      signal: this.#abort.signal,
    });
    await sender.sendAll(chunks);
  }

  /**
   * Asks for the winners. The server holds the query of a finished agency until the draw
   * ends, so one query normally suffices; after NOT_READY (the draw failed and the server
   * starts it again) it asks again after 20 ms, doubling to 100 ms. Gives up at winners.timeout.
   */
  async #queryWinners(conn: Connection, finished: { finished: number; expected: number }): Promise<string[]> {
    const ms = this.#config.winnersTimeoutMs;
    let last = finished;
    const timeout = (): WinnersTimeoutError => new WinnersTimeoutError(ms, last.finished, last.expected);
    const ask = async (msLeft: number): Promise<string[]> => {
      await conn.send(encodeMessage({ type: MessageType.WINNERS_QUERY, agency: this.#config.id }));
      const reply = await withDeadline(conn.next(), msLeft, timeout);
      if (reply.type === MessageType.WINNERS) return this.#collectWinners(conn, reply.documents, reply.last);
      if (reply.type !== MessageType.NOT_READY) throw new UnexpectedReplyError('WINNERS or NOT_READY', reply.type);
      last = reply;
      this.#log.debug({ action: 'consulta_ganadores', result: 'in_progress', terminadas: reply.finished, esperadas: reply.expected });
      throw new NotReadyError(reply.finished, reply.expected);
    };
    try {
      return await retryWithBackoff((_, msLeft) => ask(msLeft), {
        initialMs: 20,
        maxMs: 100,
        timeoutMs: ms,
        signal: this.#abort.signal,
        retryable: (err) => err instanceof NotReadyError,
      });
    } catch (err) {
      throw err instanceof NotReadyError ? timeout() : err;
    }
  }

  async #collectWinners(conn: Connection, first: string[], last: boolean): Promise<string[]> {
    const all = [...first];
    while (!last) {
      const more = await conn.expect(MessageType.WINNERS);
      all.push(...more.documents);
      last = more.last;
    }
    return all;
  }

  async #closeSocket(): Promise<void> {
    if (this.#conn === null) return;
    const conn = this.#conn;
    this.#conn = null;
    await conn.close();
    this.#log.info({ action: 'close_socket', result: 'success' });
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
