/** Every way an agency's run can fail, one class each, so callers branch on `instanceof`. */
import { ConfigError } from '../shared/config/values.js';
import { messageTypeName } from '../shared/protocol/messages.js';

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
