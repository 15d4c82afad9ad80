/**
 * The end of an agency's run: asking for its winners once FINISHED is acknowledged. The server
 * holds the query of a finished agency until the draw ends (on whichever server it runs), so
 * one query normally suffices; after NOT_READY (the draw failed and the server starts it
 * again) it asks again after 20 ms, doubling to 100 ms. Gives up at winners.timeout.
 */
import type { Logger } from '../shared/logging/logger.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { MessageType } from '../shared/protocol/messages.js';
import { retryWithBackoff, withDeadline } from '../shared/util/async.js';
import type { Connection } from './connection.js';
import { UnexpectedReplyError, WinnersTimeoutError } from './errors.js';

/** NOT_READY: the draw failed and the server starts it again; asked again after a wait. */
class NotReadyError extends Error {
  constructor(
    readonly finished: number,
    readonly expected: number,
  ) {
    super(`the draw is not ready: ${finished} of ${expected} agencies finished`);
  }
}

/** A PING this often while the winners are awaited: well inside the server's idle timeout (SERVER_IDLE_TIMEOUT, 60 s by default). */
const KEEPALIVE_MS = 15_000;

export interface WinnersQueryOptions {
  readonly agency: number;
  /** winners.timeout */
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  readonly log: Logger;
}

/** The agency's winners' documents; `finished` is FINISHED_ACK's figures (for the timeout's message). */
export async function queryWinners(
  conn: Connection,
  opts: WinnersQueryOptions,
  finished: { finished: number; expected: number },
): Promise<string[]> {
  const ms = opts.timeoutMs;
  let last = finished;
  const timeout = (): WinnersTimeoutError => new WinnersTimeoutError(ms, last.finished, last.expected);
  const ask = async (msLeft: number): Promise<string[]> => {
    await conn.send(encodeMessage({ type: MessageType.WINNERS_QUERY, agency: opts.agency }));
    let reply = await withDeadline(conn.next(), msLeft, timeout);
    while (reply.type === MessageType.PONG) reply = await withDeadline(conn.next(), msLeft, timeout);
    if (reply.type === MessageType.WINNERS) return collectWinners(conn, reply.documents, reply.last);
    if (reply.type !== MessageType.NOT_READY) throw new UnexpectedReplyError('WINNERS or NOT_READY', reply.type);
    last = reply;
    opts.log.debug({ action: 'consulta_ganadores', result: 'in_progress', terminadas: reply.finished, esperadas: reply.expected });
    throw new NotReadyError(reply.finished, reply.expected);
  };
  // The server holds the query until the draw; PINGs (answered after it) show the wait is alive.
  // Referenced (the socket keeps the process alive meanwhile anyway): Node leaves the timer list
  // of a cleared unreferenced timer behind, and the client's start-up snapshot, whose build runs
  // this, would carry it (tools/bundle.ts).
  const keepAlive = setInterval(() => void conn.send(encodeMessage({ type: MessageType.PING })).catch(() => {}), KEEPALIVE_MS);
  try {
    return await retryWithBackoff((_, msLeft) => ask(msLeft), {
      initialMs: 20,
      maxMs: 100,
      timeoutMs: ms,
      signal: opts.signal,
      retryable: (err) => err instanceof NotReadyError,
    });
  } catch (err) {
    throw err instanceof NotReadyError ? timeout() : err;
  } finally {
    clearInterval(keepAlive);
  }
}

async function collectWinners(conn: Connection, first: string[], last: boolean): Promise<string[]> {
  const all = [...first];
  while (!last) {
    const more = await conn.expect(MessageType.WINNERS);
    all.push(...more.documents);
    last = more.last;
  }
  return all;
}
