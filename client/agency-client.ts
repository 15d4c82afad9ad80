/**
 * One agency's run: stream the CSV in batches over one connection (several batches in
 * flight, acknowledged in order), send FINISHED, then ask for the winners (the server
 * answers once the draw has happened). `stop()` (SIGTERM) ends reading and closes the file
 * and the socket.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../shared/logging/logger.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { AckStatus, ErrorCode, MessageType, PROTOCOL_VERSION, type Message } from '../shared/protocol/messages.js';
import { readAgencyBetChunks } from './bets-reader.js';
import type { ClientConfig } from './config.js';
import { ServerRefusedError, UnexpectedReplyError, connectWithRetry, type Connection } from './connection.js';

/** Batches sent and not yet acknowledged; keeps the server busy across round trips. */
const WINDOW = 32;

export interface RunSummary {
  sent: number;
  batches: number;
  rejected: number;
  badRows: number;
  winners: string[];
}

export class WinnersTimeoutError extends Error {
  constructor(ms: number, finished: number, expected: number) {
    super(
      `no draw after ${ms} ms: ${finished} of ${expected} agencies had finished at last word from the server; raise winners.timeout or check the other agencies`,
    );
    this.name = 'WinnersTimeoutError';
  }
}

export class DataFileError extends Error {
  constructor(path: string, cause: string) {
    super(`cannot read the data file ${path} (${cause}); set CLI_DATA_FILE or data.file, or generate it with make data`);
    this.name = 'DataFileError';
  }
}

/** Fails before connecting, so a missing file is not reported only after the connect retries. */
async function checkReadable(path: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (err) {
    throw new DataFileError(path, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
  }
}

export class AgencyClient {
  readonly #config: ClientConfig;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #conn: Connection | null = null;
  readonly #inflight: Array<{ seq: number; count: number }> = [];
  readonly #summary: RunSummary = { sent: 0, batches: 0, rejected: 0, badRows: 0, winners: [] };
  /** Settles once the data file is closed (at once while it has not been opened). */
  #fileClosed: Promise<void> = Promise.resolve();

  constructor(config: ClientConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  get stopping(): boolean {
    return this.#abort.signal.aborted;
  }

  async run(): Promise<RunSummary> {
    const c = this.#config;
    await checkReadable(c.dataFile);
    const conn = await this.#bind();
    await this.#sendBets(conn);
    if (this.stopping) return this.#summary;
    await conn.send(encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: c.id }));
    const ack = await conn.expect(MessageType.FINISHED_ACK);
    this.#log.info({ action: 'notificacion_enviada', result: 'success', terminadas: ack.finished, esperadas: ack.expected });
    this.#summary.winners = await this.#queryWinners(conn, ack);
    this.#log.info({ action: 'consulta_ganadores', result: 'success', cant_ganadores: this.#summary.winners.length });
    await this.#closeSocket();
    return this.#summary;
  }

  /**
   * Connects and says HELLO, retrying within server.connectTimeout while the server is not
   * up or still holds this agency for an earlier connection of ours (AGENCY_BUSY).
   */
  async #bind(): Promise<Connection> {
    const c = this.#config;
    const deadline = Date.now() + c.connectTimeoutMs;
    const onRetry = (err: Error, attempt: number, delay: number): void => {
      this.#log.info({ action: 'connect', result: 'in_progress', intento: attempt, espera_ms: delay, error: err.message });
    };
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      const conn = await connectWithRetry(c.host, c.port, Math.max(0, deadline - Date.now()), onRetry, this.#abort.signal);
      this.#conn = conn;
      try {
        await conn.send(encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: c.id }));
        const welcome = await conn.expect(MessageType.WELCOME);
        this.#log.info({ action: 'connect', result: 'success', servidor: `${c.host}/${c.port}`, ultimo_lote: welcome.next });
        return conn;
      } catch (err) {
        const busy = err instanceof ServerRefusedError && err.code === ErrorCode.AGENCY_BUSY;
        if (!busy || Date.now() + delay > deadline) throw err;
        await this.#closeSocket();
        onRetry(err, 0, delay);
        await sleep(delay, undefined, { signal: this.#abort.signal });
      }
    }
  }

  async #sendBets(conn: Connection): Promise<void> {
    const c = this.#config;
    const builder = new BatchBuilder(c.maxAmount);
    let seq = 0;
    const flush = async (): Promise<void> => {
      const count = builder.count;
      await conn.send(builder.take(++seq));
      this.#inflight.push({ seq, count });
      if (this.#inflight.length >= WINDOW) await this.#awaitAck(conn);
    };
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
    try {
      for await (const chunk of chunks) {
        for (const bet of chunk) {
          if (!builder.add(bet)) {
            await flush();
            builder.add(bet);
          }
          if (builder.full) await flush();
        }
      }
      if (builder.count > 0) await flush();
    } catch (err) {
      if (!this.stopping) throw err;
    }
    while (this.#inflight.length > 0 && !this.stopping) await this.#awaitAck(conn);
  }

  async #awaitAck(conn: Connection): Promise<void> {
    const ack = await conn.expect(MessageType.BATCH_ACK);
    const head = this.#inflight.shift();
    if (head === undefined || head.seq !== ack.first) {
      throw new Error(`acknowledgement for batch ${ack.first} arrived while batch ${head?.seq} was expected`);
    }
    this.#summary.batches++;
    if (ack.status === AckStatus.REJECTED) {
      this.#summary.rejected += head.count;
      this.#log.error({
        action: 'apuesta_enviada',
        result: 'fail',
        cantidad: head.count,
        lote: ack.first,
        indice: ack.index,
        error: ack.reason,
      });
      return;
    }
    this.#summary.sent += head.count;
    this.#log.info({ action: 'apuesta_enviada', result: 'success', cantidad: head.count, lote: ack.first });
  }

  /**
   * Asks for the winners. The server holds the query of a finished agency until the draw
   * ends, so one query normally suffices; after NOT_READY (the draw failed and the server
   * starts it again) it asks again after 20 ms, doubling to 100 ms. Gives up at winners.timeout.
   */
  async #queryWinners(conn: Connection, finished: { finished: number; expected: number }): Promise<string[]> {
    const deadline = Date.now() + this.#config.winnersTimeoutMs;
    const timeout = (): WinnersTimeoutError => new WinnersTimeoutError(this.#config.winnersTimeoutMs, finished.finished, finished.expected);
    let delay = 20;
    for (;;) {
      await conn.send(encodeMessage({ type: MessageType.WINNERS_QUERY, agency: this.#config.id }));
      const reply = await this.#nextBefore(conn, deadline, timeout);
      if (reply.type === MessageType.WINNERS) return this.#collectWinners(conn, reply.documents, reply.last);
      if (reply.type !== MessageType.NOT_READY) throw new UnexpectedReplyError('WINNERS or NOT_READY', reply.type);
      finished = reply;
      if (Date.now() + delay > deadline) throw timeout();
      this.#log.debug({ action: 'consulta_ganadores', result: 'in_progress', terminadas: reply.finished, esperadas: reply.expected });
      await sleep(delay, undefined, { signal: this.#abort.signal });
      delay = Math.min(delay * 2, 100);
    }
  }

  /** conn.next(), or `onTimeout()` thrown once `deadline` passes first. */
  async #nextBefore(conn: Connection, deadline: number, onTimeout: () => Error): Promise<Message> {
    const timer = new AbortController();
    const expired = sleep(Math.max(0, deadline - Date.now()), undefined, { signal: timer.signal }).then(() => {
      throw onTimeout();
    });
    expired.catch(() => {}); // settles as an abort once the reply wins
    try {
      return await Promise.race([conn.next(), expired]);
    } finally {
      timer.abort();
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

  /** SIGTERM: stop reading, close the socket; settles once both file and socket are closed. Idempotent. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.all([this.#closeSocket(), this.#fileClosed]);
  }
}
