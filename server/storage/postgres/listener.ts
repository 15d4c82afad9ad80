/**
 * The backend's ears: one dedicated connection (not from the pool: a pooled client would
 * stop listening when released) that LISTENs on the backend's channels. When the connection
 * drops (the database restarted, the network blipped) it reconnects with backoff, forever,
 * until closed; since a notification sent while nobody listened is lost, onListening() runs
 * after every (re)connection, once LISTEN is in place, so the owner re-reads the state once.
 */
import pg from 'pg';
import type { Logger } from '../../../shared/logging/logger.js';
import { retryWithBackoff } from '../../../shared/util/async.js';

export interface ListenerEvents {
  onNotification(channel: string, payload: string): void;
  onListening(reconnected: boolean): void;
}

export class Listener {
  readonly #config: pg.ClientConfig;
  readonly #channels: readonly string[];
  readonly #events: ListenerEvents;
  readonly #log: Logger | undefined;
  readonly #abort = new AbortController();
  #client: pg.Client | null = null;
  #reconnecting: Promise<void> | null = null;
  #closed: Promise<void> | null = null;

  constructor(config: pg.ClientConfig, channels: readonly string[], events: ListenerEvents, log?: Logger) {
    this.#config = config;
    this.#channels = channels;
    this.#events = events;
    this.#log = log;
  }

  /** Connects and LISTENs, retrying transient failures for up to `timeoutMs` or until `stop` aborts. */
  async start(timeoutMs: number, stop?: AbortSignal): Promise<void> {
    const signal = stop === undefined ? this.#abort.signal : AbortSignal.any([this.#abort.signal, stop]);
    await retryWithBackoff(() => this.#connect(), { initialMs: 50, maxMs: 1_000, timeoutMs, signal });
    this.#events.onListening(false);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#abort.abort(new Error('listener closed'));
      const client = this.#client;
      this.#client = null;
      await this.#reconnecting?.catch(() => undefined);
      await client?.end().catch(() => undefined);
    })();
    return this.#closed;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#config);
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('the connection ended')));
    client.on('notification', (m) => this.#events.onNotification(m.channel, m.payload ?? ''));
    try {
      await client.connect();
      for (const channel of this.#channels) await client.query(`LISTEN "${channel}"`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.#abort.signal.aborted) {
      await client.end().catch(() => undefined);
      throw this.#abort.signal.reason;
    }
    this.#client = client;
  }

  #lost(client: pg.Client, err: Error): void {
    if (this.#client !== client) return;
    this.#client = null;
    void client.end().catch(() => undefined);
    if (this.#abort.signal.aborted) return;
    this.#log?.warn({ action: 'db_listener', result: 'lost', error: err.message });
    this.#reconnecting = this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    try {
      await retryWithBackoff(() => this.#connect(), {
        initialMs: 50,
        maxMs: 2_000,
        timeoutMs: Number.POSITIVE_INFINITY,
        signal: this.#abort.signal,
      });
    } catch {
      return; // Only a close ends the retries.
    }
    this.#log?.info({ action: 'db_listener', result: 'reconnected' });
    this.#events.onListening(true);
  }
}
