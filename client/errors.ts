/** Every way an agency's run can fail, one class each, so callers branch on `instanceof`. */
import { ConfigError } from '../shared/config/values.js';
import { retryHintMs } from '../shared/net/retry-hint.js';
import { ErrorCode, messageTypeName } from '../shared/protocol/messages.js';
import { DialError } from './dial.js';

/** The connection ended (closed, reset, or bytes that do not decode) before the reply we wait for. */
export class ConnectionClosedError extends Error {
  constructor(detail: string) {
    super(`connection to the server closed: ${detail}`);
    this.name = 'ConnectionClosedError';
  }
}

/** The server answered with an ERROR message; the connection is over (the server closes it). */
export class ServerRefusedError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(`server error ${code}: ${message}`);
    this.name = 'ServerRefusedError';
    this.code = code;
  }
}

/** The server's bytes do not decode: a server that does not speak this protocol; reconnecting would not help. */
export class BadReplyError extends Error {
  constructor(detail: string) {
    super(`undecodable reply from the server: ${detail}`);
    this.name = 'BadReplyError';
  }
}

export class UnexpectedReplyError extends Error {
  constructor(expected: string, got: number) {
    super(`expected ${expected} from the server, got ${messageTypeName(got)}`);
    this.name = 'UnexpectedReplyError';
  }
}

/** No connection (or no WELCOME) within server.connectTimeout. */
export class ConnectTimeoutError extends Error {
  /** `host:port` as configured (server.address). */
  readonly address: string;
  constructor(address: string, ms: number, cause: string) {
    super(`no session with the server at ${address} within ${ms} ms (${cause}); check that it runs, or raise server.connectTimeout`);
    this.name = 'ConnectTimeoutError';
    this.address = address;
  }
}

/** BATCH_ACK OUT_OF_ORDER: the server holds bets up to `next`; the run resumes there on a new connection. */
export class OutOfOrderError extends Error {
  readonly next: number;
  constructor(first: number, next: number) {
    super(`the batch from bet ${first} does not continue the server's bets, which end before bet ${next}; resuming from there`);
    this.name = 'OutOfOrderError';
    this.next = next;
  }
}

/** The server went away and did not come back within server.reconnectTimeout. */
export class ServerGoneError extends Error {
  /** `host:port` as configured (server.address). */
  readonly address: string;
  constructor(address: string, ms: number, stored: number, cause: string) {
    super(
      `the server at ${address} did not come back within ${ms} ms (${cause}); ${stored} bets of this agency are known to be stored; run the client again once the server is up, it resumes where the server stands`,
    );
    this.name = 'ServerGoneError';
    this.address = address;
  }
}

export class WinnersTimeoutError extends Error {
  constructor(ms: number, finished: number, expected: number) {
    super(
      `no draw after ${ms} ms: ${finished} of ${expected} agencies had finished at last word from the server; raise winners.timeout or check the other agencies`,
    );
    this.name = 'WinnersTimeoutError';
  }
}

/** The data file cannot be read. A configuration error: it is found before connecting, and exits 2. */
export class DataFileError extends ConfigError {
  constructor(path: string, cause: string) {
    super('CLI_DATA_FILE', `cannot read the data file ${path} (${cause}); set CLI_DATA_FILE or data.file, or generate it with make data`);
    this.name = 'DataFileError';
  }
}

/**
 * Worth another connection: the server is not reachable yet, restarting, still holds our old
 * connection, at a limit (BUSY), or too slow to take our proof in time (AUTH_TIMEOUT: a server
 * under load, or a slow TLS handshake; our key is sound, so the next attempt can pass).
 */
export function retryable(err: Error): boolean {
  if (err instanceof DialError || err instanceof ConnectionClosedError) return true;
  const codes: number[] = [ErrorCode.AGENCY_BUSY, ErrorCode.SHUTTING_DOWN, ErrorCode.BUSY, ErrorCode.AUTH_TIMEOUT];
  return err instanceof ServerRefusedError && codes.includes(err.code);
}

/** A run that can go on over a new connection, resuming where the server stands. */
export function resumable(err: Error): boolean {
  return err instanceof OutOfOrderError || retryable(err);
}

/** The wait an ERROR BUSY asks for ("retry in N ms"), or null for any other failure. */
export function busyHint(err: Error): number | null {
  return err instanceof ServerRefusedError && err.code === ErrorCode.BUSY ? retryHintMs(err.message) : null;
}
