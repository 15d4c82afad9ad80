/**
 * The bench's own agency client: many agencies in one process, speaking the protocol
 * through shared/protocol. Unlike the real client it encodes every batch before the clock
 * starts (so it is never the bottleneck) and timestamps each BATCH write and its BATCH_ACK.
 * Otherwise it behaves like the real one: one connection per agency, HELLO, up to `window`
 * batches in flight (SEND_WINDOW, as the real client), FINISHED, one WINNERS_QUERY (held by
 * the server until the draw; asked again from 20 ms doubling to 100 ms on NOT_READY), as the
 * real client does. With `barrier` every agency is connected
 * before any sends a bet. CSV rows are split on commas (the bench's files are never quoted).
 * Usage: node dist/bench/load-client.js CONFIG_JSON; prints one JSON line (LoadReport).
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bet } from '../shared/domain/bet.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { AckStatus, MAC_BYTES, MessageType, PROTOCOL_VERSION, type Message } from '../shared/protocol/messages.js';
import { retryWithBackoff } from '../shared/util/async.js';
import { percentile } from './stats.js';

export interface LoadConfig {
  host: string;
  port: number;
  /** `port`: this agency's server when several share a database (issue 13); default cfg.port. */
  agencies: Array<{ agency: number; file: string; port?: number }>;
  maxAmount: number;
  window: number;
  barrier: boolean;
  connectTimeoutMs: number;
}

export interface LoadReport {
  preparedAt: number;
  connectedAt: number;
  firstSendAt: number;
  lastAckAt: number;
  doneAt: number;
  bets: number;
  batches: number;
  latencyMs: { p50: number; p99: number; max: number; mean: number };
  maxConcurrent: number;
  connectRetries: number;
  winners: number;
  errors: string[];
}

const now = (): number => performance.timeOrigin + performance.now();
const NO_KEY_PROOF = encodeMessage({ type: MessageType.PROOF, mac: Buffer.alloc(MAC_BYTES) });

function encodeFile(agency: number, file: string, maxAmount: number): { frames: Buffer[]; counts: number[]; firsts: number[] } {
  const frames: Buffer[] = [];
  const counts: number[] = [];
  const firsts: number[] = [];
  let first = 0;
  const builder = new BatchBuilder(maxAmount);
  // Each batch names the index of its first bet (protocol 2's idempotency key).
  const flush = (): void => {
    counts.push(builder.count);
    firsts.push(first);
    first += builder.count;
    frames.push(builder.take(firsts.at(-1)!));
  };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = line.replace(/\r$/, '').split(',');
    if (f.length < 5) continue;
    const bet: Bet = {
      agency,
      firstName: f[0] ?? '',
      lastName: f[1] ?? '',
      document: f[2] ?? '',
      birthdate: f[3] ?? '',
      number: Number(f[4]),
    };
    if (!builder.add(bet)) {
      flush();
      builder.add(bet);
    }
    if (builder.full) flush();
  }
  if (builder.count > 0) flush();
  return { frames, counts, firsts };
}

/** One connection: messages handed out in arrival order. */
class Conn {
  readonly socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #inbox: Array<{ msg: Message; at: number }> = [];
  #waiter: ((m: { msg: Message; at: number }) => void) | null = null;
  #failure: ((e: Error) => void) | null = null;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      const at = now();
      for (const frame of this.#decoder.push(chunk)) {
        const item = { msg: decodeMessage(frame), at };
        const w = this.#waiter;
        if (w !== null) {
          this.#waiter = null;
          this.#failure = null;
          w(item);
        } else this.#inbox.push(item);
      }
    });
    const fail = (e: Error): void => {
      const f = this.#failure;
      this.#waiter = null;
      this.#failure = null;
      f?.(e);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by the server')));
  }

  next(): Promise<{ msg: Message; at: number }> {
    const item = this.#inbox.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.socket.destroyed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.#waiter = resolve;
      this.#failure = reject;
    });
  }
}

function connectOnce(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function run(cfg: LoadConfig): Promise<LoadReport> {
  const encoded = cfg.agencies.map((a) => ({ ...a, ...encodeFile(a.agency, a.file, cfg.maxAmount) }));
  const totalBatches = encoded.reduce((n, a) => n + a.frames.length, 0);
  const latencies = new Float64Array(totalBatches);
  const report: LoadReport = {
    preparedAt: now(),
    connectedAt: 0,
    firstSendAt: 0,
    lastAckAt: 0,
    doneAt: 0,
    bets: 0,
    batches: 0,
    latencyMs: { p50: NaN, p99: NaN, max: NaN, mean: NaN },
    maxConcurrent: 0,
    connectRetries: 0,
    winners: 0,
    errors: [],
  };
  let open = 0;
  let connected = 0;
  let releaseBarrier = (): void => {};
  const barrier = new Promise<void>((resolve) => {
    releaseBarrier = resolve;
  });
  const deadline = Date.now() + cfg.connectTimeoutMs;

  const agency = (a: (typeof encoded)[number]): Promise<void> =>
    runAgency(a).catch((err: unknown) => {
      releaseBarrier();
      throw err;
    });

  const runAgency = async (a: (typeof encoded)[number]): Promise<void> => {
    const socket = await retryWithBackoff(() => connectOnce(cfg.host, a.port ?? cfg.port), {
      initialMs: 20,
      maxMs: 20,
      timeoutMs: Math.max(0, deadline - Date.now()),
      onRetry: () => report.connectRetries++,
    });
    report.maxConcurrent = Math.max(report.maxConcurrent, ++open);
    const conn = new Conn(socket);
    try {
      // HELLO and the PROOF of a client with no key back to back; the CHALLENGE needs no reading then.
      socket.write(Buffer.concat([encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: a.agency }), NO_KEY_PROOF]));
      const challenge = await conn.next();
      const welcome = await conn.next();
      if (challenge.msg.type !== MessageType.CHALLENGE || welcome.msg.type !== MessageType.WELCOME)
        throw new Error(`agency ${a.agency}: HELLO answered with types ${challenge.msg.type}, ${welcome.msg.type}`);
      if (++connected === encoded.length) {
        report.connectedAt = now();
        releaseBarrier();
      }
      if (cfg.barrier) await barrier;
      const sentAt = new Float64Array(a.frames.length);
      let next = 0;
      const send = (): void => {
        sentAt[next] = performance.now();
        if (report.firstSendAt === 0) report.firstSendAt = now();
        socket.write(a.frames[next] as Buffer);
        next++;
      };
      while (next < a.frames.length && next < cfg.window) send();
      for (let acked = 0; acked < a.frames.length; acked++) {
        const { msg, at } = await conn.next();
        if (msg.type !== MessageType.BATCH_ACK || msg.first !== a.firsts[acked] || msg.status !== AckStatus.STORED) {
          throw new Error(`agency ${a.agency}: the batch from bet ${a.firsts[acked]} answered with ${JSON.stringify(msg)}`);
        }
        latencies[report.batches++] = performance.now() - (sentAt[acked] as number);
        report.bets += a.counts[acked] as number;
        report.lastAckAt = Math.max(report.lastAckAt, at);
        if (next < a.frames.length) send();
      }
      socket.write(encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: a.agency }));
      await conn.next();
      for (let delay = 20; ; delay = Math.min(delay * 2, 100)) {
        socket.write(encodeMessage({ type: MessageType.WINNERS_QUERY, agency: a.agency }));
        let reply = (await conn.next()).msg;
        if (reply.type === MessageType.WINNERS) {
          report.winners += reply.documents.length;
          while (reply.type === MessageType.WINNERS && !reply.last) {
            reply = (await conn.next()).msg;
            if (reply.type === MessageType.WINNERS) report.winners += reply.documents.length;
          }
          break;
        }
        if (reply.type !== MessageType.NOT_READY) throw new Error(`agency ${a.agency}: winners query answered with type ${reply.type}`);
        await sleep(delay);
      }
    } finally {
      open--;
      socket.end();
    }
  };

  const results = await Promise.allSettled(encoded.map(agency));
  for (const r of results) if (r.status === 'rejected') report.errors.push(String((r.reason as Error)?.message ?? r.reason));
  const lat = latencies.subarray(0, report.batches);
  report.latencyMs = {
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    max: lat.reduce((m, v) => Math.max(m, v), 0),
    mean: lat.reduce((s, v) => s + v, 0) / Math.max(1, lat.length),
  };
  report.doneAt = now();
  return report;
}

const cfg = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LoadConfig;
const report = await run(cfg);
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(report.errors.length === 0 ? 0 : 1);
