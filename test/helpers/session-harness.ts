/**
 * A session test's own server state: a temp dir with its own bets.csv and journal, behind a
 * real FileBackend (recovered as the server does at start, a real pool of worker threads, the
 * finished counter), the ingest, draw and registry over it, a JSON log captured in memory, and client ends of `stream.duplexPair()`
 * connections to Sessions. `restart()` closes everything but the files and starts again from
 * them, as a restarted server would. Open one per test and close it in afterEach: nothing is
 * shared between tests.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duplexPair, type Duplex } from 'node:stream';
import { expect } from 'vitest';
import { AgencyAuth } from '../../server/auth/agency-auth.js';
import { Draw } from '../../server/draw.js';
import type { Services } from '../../server/handlers/context.js';
import { Ingest } from '../../server/ingest.js';
import type { ServerMetrics } from '../../server/metrics/server-metrics.js';
import type { BetPool } from '../../server/pool/bet-pool.js';
import { AgencyRegistry } from '../../server/registry.js';
import { Session, type SessionOptions } from '../../server/session.js';
import { FileBackend, type FilePool } from '../../server/storage/file-backend.js';
import type { Bet } from '../../shared/domain/bet.js';
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { BatchBuilder } from '../../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../../shared/protocol/codec.js';
import { AckStatus, MAC_BYTES, MessageType, PROTOCOL_VERSION, type Message } from '../../shared/protocol/messages.js';
import { deferred } from '../../shared/util/async.js';

export type PoolLike = FilePool;

export interface HarnessOptions {
  agencies: number;
  workers?: number;
  /** Stands between the services and the real pool, e.g. to watch or hold its calls. */
  wrapPool?: (pool: BetPool) => PoolLike;
  /** The proof check; by default authentication is off (any 32-byte mac binds). */
  auth?: AgencyAuth;
  /** The services count into it (metrics hooks); none by default. */
  metrics?: ServerMetrics;
  /** The captured log's level; `debug` by default. */
  logLevel?: string;
}

/** The client end of one connection to a Session. */
export interface Peer {
  stream: Duplex;
  /** The session's end of the pair. */
  server: Duplex;
  session: Session;
  /** The next message the server sent; rejects once the server ended with nothing left. */
  next(): Promise<Message>;
  ended: Promise<void>;
  hangUp(): void;
}

export class SessionHarness {
  services!: Services;
  backend!: FileBackend;
  pool!: BetPool;
  readonly lines: string[] = [];
  readonly #dir: string;
  readonly #opts: HarnessOptions;
  readonly #peers: Peer[] = [];
  #ids = 0;
  readonly log: Logger;

  private constructor(dir: string, opts: HarnessOptions) {
    this.#dir = dir;
    const destination = { write: (l: string) => this.lines.push(l) };
    this.log = createLogger({ level: opts.logLevel ?? 'debug', format: 'json', destination });
    this.#opts = opts;
    this.#start();
  }

  /** What the server does at start: recover the files, then build the pool and services on them. */
  #start(): void {
    const opts = this.#opts;
    this.backend = FileBackend.open({
      path: join(this.#dir, 'bets.csv'),
      agencies: opts.agencies,
      fsync: false,
      workers: opts.workers ?? 1,
      log: this.log,
      logFormat: 'json',
      ...(opts.wrapPool ? { wrapPool: opts.wrapPool } : {}),
    });
    this.pool = this.backend.pool;
    const draw = new Draw(this.backend, this.log);
    this.services = {
      ingest: new Ingest(this.backend),
      draw,
      registry: new AgencyRegistry(this.backend, this.log),
      auth: opts.auth ?? new AgencyAuth(null),
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
    };
    // As the server does at start: a complete set with no result is drawn now.
    void draw.resume();
  }

  /** Stops every session, the pool and the files (flushed and closed, as on SIGTERM), then starts again from the files. */
  async restart(): Promise<void> {
    await this.#stop();
    this.#start();
  }

  async #stop(): Promise<void> {
    for (const p of this.#peers.splice(0)) {
      p.hangUp();
      await p.session.close();
    }
    await this.services.draw.idle();
    await this.backend.close();
  }

  static async open(opts: HarnessOptions): Promise<SessionHarness> {
    return new SessionHarness(await mkdtemp(join(tmpdir(), 'session-')), opts);
  }

  /** Hangs up every connection, closes every session, the pool and the file, and removes the dir. */
  async close(): Promise<void> {
    await this.#stop();
    await rm(this.#dir, { recursive: true, force: true });
  }

  logged(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  onDisk(): string {
    return readFileSync(join(this.#dir, 'bets.csv'), 'utf8');
  }

  connect(opts: SessionOptions = {}): Peer {
    const [client, server] = duplexPair();
    const session = new Session(++this.#ids, server, this.services, this.log, opts);
    const decoder = new FrameDecoder();
    const inbox: Message[] = [];
    let arrived = deferred();
    let over = false;
    client.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) inbox.push(decodeMessage(f));
      arrived.resolve();
    });
    // A TCP socket reports the peer's FIN even while paused (net does push(null) + read(0));
    // a duplexPair side does not, so the read(0) stands in for it when we end our side.
    const hangUp = (): void => {
      client.end();
      setImmediate(() => server.read(0));
    };
    const ended = new Promise<void>((resolve) =>
      client.once('end', () => {
        over = true;
        hangUp();
        arrived.resolve();
        resolve();
      }),
    );
    const next = async (): Promise<Message> => {
      while (inbox.length === 0) {
        if (over) throw new Error('the server ended the stream');
        arrived = deferred();
        await arrived.promise;
      }
      return inbox.shift()!;
    };
    const peer = { stream: client, server, session, next, ended, hangUp };
    this.#peers.push(peer);
    return peer;
  }

  /** A connection bound to `agency` (HELLO, CHALLENGE, PROOF, then WELCOME, which is returned too). */
  async bound(
    agency: number,
    opts: SessionOptions = {},
  ): Promise<Peer & { welcome: Extract<Message, { type: typeof MessageType.WELCOME }> }> {
    const p = this.connect(opts);
    p.stream.write(hello(agency));
    expect(await p.next(), `CHALLENGE for agency ${agency}`).toMatchObject({ type: MessageType.CHALLENGE });
    p.stream.write(proof());
    const welcome = await p.next();
    expect(welcome, `WELCOME for agency ${agency}`).toMatchObject({ type: MessageType.WELCOME, agency });
    return Object.assign(p, { welcome: welcome as Extract<Message, { type: typeof MessageType.WELCOME }> });
  }

  /** Sends `batches` of one agency, the first from bet `first`, each following the one before, and expects each STORED. */
  async store(p: Peer, batches: readonly Bet[][], first = 0): Promise<void> {
    const firsts = batches.map((_, i) => first + batches.slice(0, i).reduce((n, b) => n + b.length, 0));
    p.stream.write(Buffer.concat(batches.map((bets, i) => batch(firsts[i]!, bets))));
    for (const f of firsts) {
      expect(await p.next(), `the ack of the batch from bet ${f}`).toMatchObject({
        type: MessageType.BATCH_ACK,
        first: f,
        status: AckStatus.STORED,
      });
    }
  }
}

export function bet(agency: number, document: string, number: number, over: Partial<Bet> = {}): Bet {
  return { agency, firstName: 'Ana María', lastName: 'Núñez, "Ñata"', document, birthdate: '1987-11-30', number, ...over };
}

/** One BATCH frame holding `bets`, the first being bet `first` of its agency. */
export function batch(first: number, bets: readonly Bet[]): Buffer {
  const b = new BatchBuilder(100);
  for (const x of bets) expect(b.add(x), `bet ${x.document} fits in one batch`).toBe(true);
  return b.take(first);
}

export const hello = (agency: number): Buffer => encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency });
/** The PROOF of a client with no key (any mac is accepted while authentication is off). */
export const proof = (): Buffer => encodeMessage({ type: MessageType.PROOF, mac: Buffer.alloc(MAC_BYTES) });
export const ping = (): Buffer => encodeMessage({ type: MessageType.PING });
export const finished = (agency: number): Buffer =>
  encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency });
export const winnersQuery = (agency: number): Buffer => encodeMessage({ type: MessageType.WINNERS_QUERY, agency });

/** Expects ERROR `code` as the next message, then the end of the stream. */
export async function expectError(p: Peer, code: number): Promise<void> {
  expect(await p.next()).toMatchObject({ type: MessageType.ERROR, code });
  await p.ended;
}

/**
 * The rows bets.csv must hold for `bets`, written here independently of the server's
 * betToRow: Python csv QUOTE_MINIMAL (quote a field holding `,` `"` or a line break, double
 * its quotes), CRLF line ends.
 */
export function csvRows(bets: readonly Bet[]): string {
  const q = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.split('"').join('""')}"` : s);
  return bets.map((b) => `${[b.agency, q(b.firstName), q(b.lastName), q(b.document), b.birthdate, b.number].join(',')}\r\n`).join('');
}
