import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duplexPair, type Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Lottery } from '../server/lottery.js';
import { BetPool } from '../server/pool/bet-pool.js';
import { Session } from '../server/session.js';
import { betToRow } from '../server/storage/bets-file.js';
import { ProtectedNotificationCounter } from '../server/storage/notification-counter.js';
import { ProtectedStorage, type StorageHandle } from '../server/storage/protected-storage.js';
import type { Bet } from '../shared/domain/bet.js';
import { createLogger } from '../shared/logging/logger.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage, encodeFrame, encodeMessage } from '../shared/protocol/codec.js';
import { AckStatus, ErrorCode, MessageType, PROTOCOL_VERSION, type Message } from '../shared/protocol/messages.js';

let dir: string;
let storage: StorageHandle;
let pool: BetPool;
let lottery: Lottery;
const lines: string[] = [];
const log = createLogger({
  level: 'debug',
  format: 'json',
  destination: {
    write(l: string) {
      lines.push(l);
    },
  },
});
/** Pool calls, as seen through a wrapper: whether the calling stream was paused, and concurrency. */
const poolCalls = { pausedAtCall: [] as boolean[], inFlight: 0, maxInFlight: 0, done: 0, batchesPerCall: [] as number[] };
/** Pool calls wait for this gate, so a test can hold batches "in the pool". */
let poolGate: Promise<void> = Promise.resolve();
let callingStream: Duplex | null = null;
const stored: Bet[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'session-'));
  storage = ProtectedStorage.open(join(dir, 'bets.csv'));
  const counter = ProtectedNotificationCounter.allocate(2);
  pool = new BetPool({ workers: 2, init: { storage, counter, logLevel: 'info', logFormat: 'json' } });
  const watched = {
    async storeBatches(...args: Parameters<BetPool['storeBatches']>) {
      poolCalls.pausedAtCall.push(callingStream?.isPaused() ?? false);
      poolCalls.batchesPerCall.push(args[1].length);
      poolCalls.maxInFlight = Math.max(poolCalls.maxInFlight, ++poolCalls.inFlight);
      try {
        await poolGate;
        return await pool.storeBatches(...args);
      } finally {
        poolCalls.inFlight--;
        poolCalls.done++;
      }
    },
    draw: () => pool.draw(),
  } as unknown as BetPool;
  lottery = new Lottery(watched, new ProtectedNotificationCounter(counter), log);
});

const peers: Peer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) {
    p.hangUp();
    await p.session.close();
  }
});
afterAll(async () => {
  await pool.close();
  ProtectedStorage.close(storage);
  await rm(dir, { recursive: true, force: true });
});

interface Peer {
  stream: Duplex;
  server: Duplex;
  session: Session;
  /** The next message the server sent; rejects once the server ended with nothing left. */
  next(): Promise<Message>;
  ended: Promise<void>;
  hangUp(): void;
}

let ids = 0;
function connect(helloTimeoutMs?: number): Peer {
  const [client, server] = duplexPair();
  const session = new Session(++ids, server, lottery, log, helloTimeoutMs);
  const decoder = new FrameDecoder();
  const inbox: Message[] = [];
  let wake: (() => void) | null = null;
  let over = false;
  client.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk)) inbox.push(decodeMessage(f));
    wake?.();
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
      wake?.();
      resolve();
    }),
  );
  const next = async (): Promise<Message> => {
    while (inbox.length === 0) {
      if (over) throw new Error('the server ended the stream');
      await new Promise<void>((r) => {
        wake = r;
      });
    }
    return inbox.shift()!;
  };
  const peer = { stream: client, server, session, next, ended, hangUp };
  peers.push(peer);
  return peer;
}

const logged = (): Array<Record<string, unknown>> => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
const onDisk = (): string => readFileSync(storage.path, 'utf8');
const expectedDisk = (): string => stored.map(betToRow).join('');

function bet(agency: number, document: string, number: number, over: Partial<Bet> = {}): Bet {
  return { agency, firstName: 'Ana María', lastName: 'Núñez, "Ñata"', document, birthdate: '1987-11-30', number, ...over };
}

function batch(seq: number, bets: readonly Bet[]): Buffer {
  const b = new BatchBuilder(100);
  for (const x of bets) expect(b.add(x)).toBe(true);
  return b.take(seq);
}

const hello = (agency: number): Buffer => encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency });

async function bound(agency: number): Promise<Peer> {
  const p = connect();
  p.stream.write(hello(agency));
  expect(await p.next()).toMatchObject({ type: MessageType.WELCOME, agency });
  return p;
}

async function expectError(p: Peer, code: number): Promise<void> {
  expect(await p.next()).toMatchObject({ type: MessageType.ERROR, code });
  await p.ended;
}

// The tests below share one Lottery and one bets file and run in order: agency 1 and 2
// store batches first, then both finish; `stored` mirrors what the file must hold.
describe('Session over a duplex pair', () => {
  it('answers PING before HELLO, then binds with HELLO → WELCOME', async () => {
    const p = connect();
    p.stream.write(encodeMessage({ type: MessageType.PING }));
    expect(await p.next()).toEqual({ type: MessageType.PONG, finished: 0, expected: 2, drawn: false });
    p.stream.write(hello(1));
    expect(await p.next()).toEqual({ type: MessageType.WELCOME, agency: 1, next: 0, finished: false });
    expect(p.session.agency).toBe(1);
    expect(logged()).toContainEqual(expect.objectContaining({ action: 'conexion', result: 'success', agencia: 1 }));
  });

  it('stores a BATCH and acknowledges it only once its rows are on disk', async () => {
    const p = await bound(1);
    const bets = [bet(1, '111', 7574), bet(1, '100', 0), bet(1, '112', 7574, { firstName: 'José' }), bet(1, '101', 7575)];
    const before = poolCalls.done;
    p.stream.write(batch(1, bets));
    const ack = await p.next();
    expect(poolCalls.done).toBe(before + 1);
    expect(ack).toEqual({ type: MessageType.BATCH_ACK, first: 1, status: AckStatus.STORED, count: 4 });
    stored.push(...bets);
    expect(onDisk()).toBe(expectedDisk());
  });

  it('rejects a batch with a bad bet, with index and reason, storing none of it', async () => {
    const p = await bound(1);
    p.stream.write(batch(2, [bet(1, '120', 1), bet(1, '121', 2), bet(1, '12x', 3), bet(1, '123', 4)]));
    const ack = await p.next();
    expect(ack).toMatchObject({ type: MessageType.BATCH_ACK, first: 2, status: AckStatus.REJECTED, index: 2 });
    expect((ack as { reason: string }).reason).toMatch(/document "12x"/);
    expect(onDisk()).toBe(expectedDisk());
    expect(logged()).toContainEqual(expect.objectContaining({ action: 'apuesta_recibida', result: 'fail', lote: 2, indice: 2 }));
  });

  it('rejects a batch whose count cannot fit in its bytes before it reaches the pool', async () => {
    const p = await bound(1);
    const calls = poolCalls.batchesPerCall.length;
    const head = Buffer.alloc(6);
    head.writeUInt32BE(3, 0);
    head.writeUInt16BE(65_535, 4);
    p.stream.write(encodeFrame(MessageType.BATCH, head));
    const ack = await p.next();
    expect(ack).toMatchObject({ type: MessageType.BATCH_ACK, first: 3, status: AckStatus.REJECTED, index: 0 });
    expect((ack as { reason: string }).reason).toMatch(/65535 bets cannot fit in 0 bytes/);
    expect(poolCalls.batchesPerCall.length).toBe(calls);
    expect(onDisk()).toBe(expectedDisk());
  });

  it('acknowledges a repeated seq as DUPLICATE without storing it twice', async () => {
    const p = await bound(1);
    p.stream.write(batch(1, [bet(1, '111', 7574)]));
    expect(await p.next()).toEqual({ type: MessageType.BATCH_ACK, first: 1, status: AckStatus.DUPLICATE, count: 1 });
    expect(onDisk()).toBe(expectedDisk());
    expect(logged()).toContainEqual(expect.objectContaining({ action: 'apuesta_duplicada', result: 'success', lote: 1 }));
  });

  it('acks several batches of one write in order; a bad one loses only itself', async () => {
    const p = await bound(1);
    const good1 = [bet(1, '130', 30)];
    const good2 = [bet(1, '132', 32), bet(1, '133', 33)];
    p.stream.write(Buffer.concat([batch(3, good1), batch(4, [bet(1, '131', 10000)]), batch(5, good2), batch(5, good2)]));
    const acks = [await p.next(), await p.next(), await p.next(), await p.next()];
    expect(acks.map((a) => [(a as { first: number }).first, (a as { status: number }).status])).toEqual([
      [3, AckStatus.STORED],
      [4, AckStatus.REJECTED],
      [5, AckStatus.STORED],
      [5, AckStatus.DUPLICATE],
    ]);
    stored.push(...good1, ...good2);
    expect(onDisk()).toBe(expectedDisk());
  });

  it('tells a reconnecting agency the last stored seq', async () => {
    const p = await bound(1);
    await p.session.close();
    const again = connect();
    again.stream.write(hello(1));
    expect(await again.next()).toEqual({ type: MessageType.WELCOME, agency: 1, next: 5, finished: false });
  });

  it('reads at most 32 frames ahead while a batch is in the pool, then pauses (backpressure)', async () => {
    const p = await bound(2);
    callingStream = p.server;
    const calls = poolCalls.batchesPerCall.length;
    let release = (): void => {};
    poolGate = new Promise((resolve) => {
      release = resolve;
    });
    const bets = Array.from({ length: 60 }, (_, i) => bet(2, `3${i}`, i === 7 ? 7574 : i));
    const frames = bets.map((b, i) => batch(i + 1, [b]));
    for (const f of frames) p.stream.write(f);
    // The first batch is held in the pool; the session reads ahead, then stops reading.
    for (let i = 0; i < 100 && !p.server.isPaused(); i++) await new Promise((resolve) => setImmediate(resolve));
    expect(p.server.isPaused()).toBe(true);
    const unread = p.server.readableLength + p.stream.writableLength;
    expect(unread).toBeGreaterThanOrEqual(frames[0]!.length * (60 - 1 - 32));
    poolGate = Promise.resolve();
    release();
    const acks = [];
    for (let i = 0; i < 60; i++) acks.push(await p.next());
    callingStream = null;
    expect(acks.map((a) => (a as { first: number; status: number }).status)).toEqual(frames.map(() => AckStatus.STORED));
    expect(acks.map((a) => (a as { first: number }).first)).toEqual(frames.map((_, i) => i + 1));
    const perCall = poolCalls.batchesPerCall.slice(calls);
    expect(perCall.reduce((n, c) => n + c, 0)).toBe(60);
    expect(Math.max(...perCall)).toBeLessThanOrEqual(32);
    expect(perCall.length).toBeLessThan(60); // queued batches share pool runs
    expect(poolCalls.maxInFlight).toBe(1);
    stored.push(...bets);
    expect(onDisk()).toBe(expectedDisk());
    // Reading resumed once the queue drained.
    p.stream.write(encodeMessage({ type: MessageType.PING }));
    expect(await p.next()).toMatchObject({ type: MessageType.PONG });
    expect(p.server.isPaused()).toBe(false);
  });
});

describe('Session protocol errors', () => {
  it('ends a connection that sends no HELLO in time with ERROR NOT_BOUND', async () => {
    const p = connect(50);
    p.stream.write(encodeMessage({ type: MessageType.PING }));
    expect(await p.next()).toMatchObject({ type: MessageType.PONG });
    await expectError(p, ErrorCode.NOT_BOUND);
  });

  it('answers BATCH before HELLO with ERROR NOT_BOUND and ends the stream', async () => {
    const p = connect();
    p.stream.write(batch(1, [bet(1, '1', 1)]));
    await expectError(p, ErrorCode.NOT_BOUND);
    expect(onDisk()).toBe(expectedDisk());
  });

  it('answers HELLO for agency 99 with ERROR UNKNOWN_AGENCY', async () => {
    const p = connect();
    p.stream.write(hello(99));
    await expectError(p, ErrorCode.UNKNOWN_AGENCY);
  });

  it('answers a second HELLO for a connected agency with AGENCY_BUSY', async () => {
    const first = await bound(2);
    const second = connect();
    second.stream.write(hello(2));
    await expectError(second, ErrorCode.AGENCY_BUSY);
    first.stream.write(encodeMessage({ type: MessageType.PING }));
    expect(await first.next()).toMatchObject({ type: MessageType.PONG });
  });

  it('answers FINISHED for another agency with WRONG_AGENCY', async () => {
    const p = await bound(1);
    p.stream.write(encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: 2 }));
    await expectError(p, ErrorCode.WRONG_AGENCY);
    expect(lottery.finished).toBe(0);
  });

  it.each([
    [
      'a HELLO of another protocol version',
      encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION + 1, agency: 1 }),
      ErrorCode.BAD_VERSION,
    ],
    ['a second HELLO on a bound connection', hello(1), ErrorCode.ALREADY_BOUND],
    [
      'a server-only message',
      encodeMessage({ type: MessageType.WELCOME, agency: 1, next: 0, finished: false }),
      ErrorCode.UNEXPECTED_MESSAGE,
    ],
    ['an unknown message type', Buffer.from([0x7f, 0, 0, 0, 0]), ErrorCode.UNKNOWN_TYPE],
    ['a malformed FINISHED', Buffer.from([MessageType.FINISHED, 0, 0, 0, 2, 0, 1]), ErrorCode.MALFORMED],
  ])('answers %s with the matching ERROR', async (_what, frame, code) => {
    const p = code === ErrorCode.BAD_VERSION ? connect() : await bound(1);
    p.stream.write(frame);
    await expectError(p, code);
  });

  it('answers an oversize frame header with FRAME_TOO_LARGE', async () => {
    const p = await bound(1);
    p.stream.write(Buffer.from([MessageType.BATCH, 0x00, 0x00, 0x20, 0x00]));
    await expectError(p, ErrorCode.FRAME_TOO_LARGE);
  });

  it('acknowledges the batch before a bad header in the same chunk, then sends one ERROR', async () => {
    const p = await bound(1);
    const good = bet(1, '150', 15);
    p.stream.write(Buffer.concat([batch(100, [good]), Buffer.from([MessageType.BATCH, 0x00, 0x00, 0x20, 0x00])]));
    expect(await p.next()).toEqual({ type: MessageType.BATCH_ACK, first: 100, status: AckStatus.STORED, count: 1 });
    stored.push(good);
    expect(onDisk()).toBe(expectedDisk());
    await expectError(p, ErrorCode.FRAME_TOO_LARGE);
  });
});

describe('Lottery when a draw fails', () => {
  it('wakes the held queries, starts the draw again on the next winners(), and answers once it succeeds', async () => {
    const flags = ProtectedNotificationCounter.allocate(1);
    let draws = 0;
    const flaky = {
      draw: () =>
        ++draws === 1 ? Promise.reject(new Error('bets.csv:7: expected 6 fields')) : Promise.resolve({ winners: [[1, ['7']]], scanned: 3 }),
    } as unknown as BetPool;
    const own: string[] = [];
    const ownLog = createLogger({
      level: 'info',
      format: 'json',
      destination: {
        write(l: string) {
          own.push(l);
        },
      },
    });
    const lot = new Lottery(flaky, new ProtectedNotificationCounter(flags), ownLog);
    const firstEnd = lot.drawEnded;
    expect(lot.finish(1)).toMatchObject({ finished: 1, expected: 1 });
    await firstEnd; // settles on the failure too: a held query is not left waiting
    expect(lot.drawn).toBe(false);
    const secondEnd = lot.drawEnded;
    expect(secondEnd).not.toBe(firstEnd);
    expect(lot.winners(1)).toEqual({ ready: false, finished: 1, expected: 1 }); // and retries
    await secondEnd;
    expect(lot.winners(1)).toEqual({ ready: true, documents: ['7'] });
    expect(draws).toBe(2);
    const draws2 = own.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.action === 'sorteo');
    expect(draws2.map((l) => l.result)).toEqual(['in_progress', 'fail', 'in_progress', 'success']);
  });
});

describe('FINISHED, draw and winners', () => {
  it('answers NOT_READY at once to an agency that has not sent FINISHED (it would wait on itself)', async () => {
    const p = await bound(1);
    p.stream.write(encodeMessage({ type: MessageType.WINNERS_QUERY, agency: 1 }));
    expect(await p.next()).toEqual({ type: MessageType.NOT_READY, finished: 0, expected: 2 });
    p.stream.write(encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: 1 }));
    expect(await p.next()).toEqual({ type: MessageType.FINISHED_ACK, finished: 1, expected: 2 });
    p.stream.write(batch(101, [bet(1, '190', 7574)])); // above the last stored seq (100)
    expect(await p.next()).toMatchObject({ type: MessageType.BATCH_ACK, first: 101, status: AckStatus.REJECTED });
    expect(onDisk()).toBe(expectedDisk());
  });

  it("holds a finished agency's WINNERS_QUERY while others are missing; closing the session releases it", async () => {
    const p = await bound(1);
    p.stream.write(encodeMessage({ type: MessageType.WINNERS_QUERY, agency: 1 }));
    p.stream.write(encodeMessage({ type: MessageType.PING }));
    const reply = p.next();
    const early = await Promise.race([reply, new Promise((r) => setTimeout(() => r('nothing'), 200))]);
    expect(early).toBe('nothing'); // no NOT_READY, and the PING behind the query waits too
    const t0 = performance.now();
    await p.session.close(true);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(await reply).toMatchObject({ type: MessageType.ERROR, code: ErrorCode.SHUTTING_DOWN });
    expect(lottery.drawn).toBe(false);
  });

  it('answers a held query the moment the draw ends, once both finished, each agency exactly its own winners', async () => {
    const one = await bound(1);
    one.stream.write(encodeMessage({ type: MessageType.WINNERS_QUERY, agency: 1 }));
    const oneAnswer = one.next();
    const two = await bound(2);
    two.stream.write(encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: 2 }));
    expect(await two.next()).toEqual({ type: MessageType.FINISHED_ACK, finished: 2, expected: 2 });
    // Agency 1 asked once, before the draw: its answer comes without asking again.
    expect(await oneAnswer).toEqual({ type: MessageType.WINNERS, last: true, documents: ['111', '112'] });
    expect(lottery.drawn).toBe(true);
    two.stream.write(encodeMessage({ type: MessageType.WINNERS_QUERY, agency: 2 }));
    expect(await two.next()).toEqual({ type: MessageType.WINNERS, last: true, documents: ['37'] });
    // A repeated FINISHED counts once.
    two.stream.write(encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: 2 }));
    expect(await two.next()).toEqual({ type: MessageType.FINISHED_ACK, finished: 2, expected: 2 });
    expect(lottery.finished).toBe(2);
    const draws = logged().filter((l) => l.action === 'sorteo' && l.result === 'success');
    expect(draws).toHaveLength(1);
    expect(draws[0]).toMatchObject({ apuestas: stored.length, ganadores: 3 });
  });
});
