/**
 * SERVER_DATABASE_URL, checked at start and kept out of the logs: it prints (config line,
 * errors) as `user@host/port/database`, never with its password, and hands the full text only
 * to the PostgreSQL driver (`connectionString`).
 */
import { inspect } from 'node:util';
import { ConfigError } from '../../shared/config/values.js';

const FORM = 'postgres://user@host:port/database (a password, if any, after user:)';

export class DatabaseUrl {
  readonly #url: string;
  readonly #shown: string;

  private constructor(url: string, shown: string) {
    this.#url = url;
    this.#shown = shown;
  }

  /** Throws ConfigError naming `key` (and never quoting the value: it may hold a password). */
  static parse(key: string, text: string): DatabaseUrl {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ConfigError(key, `is not a URL; write ${FORM}`);
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
      throw new ConfigError(key, `has the scheme ${url.protocol.replace(/:$/, '')}; write ${FORM}`);
    const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
    if (url.hostname === '') throw new ConfigError(key, `names no host; write ${FORM}`);
    if (database === '' || database.includes('/')) throw new ConfigError(key, `names no database (or several); write ${FORM}`);
    const user = url.username === '' ? '' : `${decodeURIComponent(url.username)}@`;
    return new DatabaseUrl(text, `${user}${url.hostname}/${url.port || '5432'}/${database}`);
  }

  /** The full URL, password included: for the driver only. */
  get connectionString(): string {
    return this.#url;
  }

  toString(): string {
    return this.#shown;
  }

  toJSON(): string {
    return this.#shown;
  }

  [inspect.custom](): string {
    return `DatabaseUrl(${this.#shown})`;
  }
}
