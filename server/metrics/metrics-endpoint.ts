/**
 * The Prometheus endpoint: a small HTTP server answering `GET /metrics` with the server's
 * figures (text exposition format), nothing else. Started only when SERVER_METRICS_PORT is
 * set. It takes few connections and short requests: a scraper needs one, and a peer that
 * opens many or sends slowly must not hold the server's memory. `close()` is idempotent and
 * bounded: idle keep-alive connections are closed at once, a scrape still running gets
 * CLOSE_GRACE_MS.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLOSE_GRACE_MS } from '../../shared/net/stream-io.js';
import { settlesWithin } from '../../shared/util/async.js';
import type { ServerMetrics } from './server-metrics.js';

const MAX_CONNECTIONS = 16;
const REQUEST_TIMEOUT_MS = 5000;

/** The endpoint could not listen; says which setting to change. */
export class MetricsListenError extends Error {
  constructor(host: string, port: number, cause: string) {
    super(
      `the metrics endpoint cannot listen on ${host} port ${port} (${cause}); set SERVER_METRICS_PORT to a free port, or leave it empty to turn metrics off`,
    );
    this.name = 'MetricsListenError';
  }
}

export class MetricsEndpoint {
  readonly #http: Server;
  readonly #metrics: ServerMetrics;
  #address: AddressInfo | null = null;
  #closing: Promise<void> | null = null;

  private constructor(metrics: ServerMetrics) {
    this.#metrics = metrics;
    this.#http = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
      void this.#answer(req, res);
    });
    this.#http.maxConnections = MAX_CONNECTIONS;
  }

  /** Listens on host:port (0: any free port); rejects with MetricsListenError. */
  static start(metrics: ServerMetrics, host: string, port: number): Promise<MetricsEndpoint> {
    const endpoint = new MetricsEndpoint(metrics);
    const http = endpoint.#http;
    return new Promise((resolve, reject) => {
      http.once('error', (err: NodeJS.ErrnoException) => reject(new MetricsListenError(host, port, err.code ?? err.message)));
      http.listen({ host, port }, () => {
        http.removeAllListeners('error');
        http.on('error', () => {}); // after listen, errors are per connection and end only that one
        endpoint.#address = http.address() as AddressInfo;
        resolve(endpoint);
      });
    });
  }

  /** Where it listens (kept after close, for the closing line). */
  get address(): AddressInfo {
    return this.#address!;
  }

  async #answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET /metrics\n');
    } else if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the figures are at /metrics\n');
    } else {
      try {
        const body = await this.#metrics.text();
        res.writeHead(200, { 'content-type': this.#metrics.registry.contentType }).end(req.method === 'HEAD' ? undefined : body);
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`);
      }
    }
  }

  /** Stops listening and closes every connection (a scrape in progress gets CLOSE_GRACE_MS). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
      this.#http.closeIdleConnections();
      if (!(await settlesWithin(closed, CLOSE_GRACE_MS))) {
        this.#http.closeAllConnections();
        await closed;
      }
    })();
    return this.#closing;
  }
}
