/**
 * The agency client in-process: AgencyClient and its Connection over `stream.duplexPair()`
 * against a scripted server that speaks the real codec (window, acks, DUPLICATE/REJECTED,
 * ERROR, NOT_READY, timeouts, AGENCY_BUSY, stop), and over real TCP on 127.0.0.1 for the
 * connect retries.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient, type RunSummary } from '../client/agency-client.js';
import type { ClientConfig } from '../client/config.js';
import { ConnectTimeoutError, ServerRefusedError, WinnersTimeoutError } from '../client/errors.js';
import { AgencyKey } from '../shared/auth/agency-key.js';
import { AckStatus, BATCH_WINDOW, ErrorCode, MessageType, SEND_WINDOW } from '../shared/protocol/messages.js';
import { freePort } from '../shared/util/net.js';
import { FakeServer, type FakePeer } from './helpers/fake-server.js';
import { LogTap } from './helpers/log-tap.js';
import { makeTempDir, removeDir } from './helpers/processes.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('agency-client');
});
afterAll(() => removeDir(dir));

/** Valid rows `Ana,Paz,<document>,1990-01-02,<number>`, numbers 0, 1, 2, ... */
async function dataFile(name: string, rows: number): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, Array.from({ length: rows }, (_, i) => `Ana,Paz,${30_000_000 + i},1990-01-02,${i % 10_000}\n`).join(''));
  return path;
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Rig {
  fake: FakeServer;
  tap: LogTap;
  client: AgencyClient;
  /** client.run(), started at once; a rejection is kept for the test to read. */
  running: Promise<RunSummary>;
}

function start(over: Partial<ClientConfig> & { dataFile: string }, fake = new FakeServer(), useFake = true): Rig {
  const base = {
    id: 1,
    host: '127.0.0.1',
    port: 1,
    connectTimeoutMs: 5000,
    reconnectTimeoutMs: 5000,
    maxAmount: 150,
    logLevel: 'debug',
    winnersTimeoutMs: 5000,
    key: null,
    tls: null,
    ...over,
  };
  const config: ClientConfig = { ...base, servers: over.servers ?? [{ host: base.host, port: base.port }] };
  const tap = new LogTap();
  const client = useFake ? new AgencyClient(config, tap.log, fake.dial) : new AgencyClient(config, tap.log);
  const running = client.run();
  running.catch(() => {});
  cleanups.push(
    () => fake.close(),
    () => client.stop(),
  );
  return { fake, tap, client, running };
}

/** Answers the winners query with these documents, split over two WINNERS frames. */
async function answerWinners(peer: FakePeer, documents: string[]): Promise<void> {
  await peer.expect(MessageType.WINNERS_QUERY);
  const half = Math.ceil(documents.length / 2);
  peer.send({ type: MessageType.WINNERS, last: false, documents: documents.slice(0, half) });
  peer.send({ type: MessageType.WINNERS, last: true, documents: documents.slice(half) });
}

describe('AgencyClient over a duplexPair', () => {
  it('says HELLO, sends every bet, FINISHED, gathers winners over several frames, and closes the file before the socket', async () => {
    const rows = 1000;
    const { fake, tap, running } = start({ dataFile: await dataFile('run.csv', rows) });
    const peer = await fake.peer(0);
    await peer.accept(1);
    const received = await peer.storeUntilFinished(1, 1);
    await answerWinners(peer, ['30000001', '30000002', '30000003']);
    const summary = await running;
    expect(received).toBe(rows);
    expect(summary).toEqual({
      sent: rows,
      duplicates: 0,
      written: rows,
      batches: Math.ceil(rows / 150),
      rejected: 0,
      resumed: 0,
      badRows: 0,
      winners: ['30000001', '30000002', '30000003'],
    });
    await peer.ended;
    const closeFile = tap.indexOf('close_file');
    expect(closeFile, tap.text()).toBeGreaterThanOrEqual(0);
    expect(tap.indexOf('close_socket'), tap.text()).toBeGreaterThan(closeFile);
    expect(tap.find('connect', 'success')).toHaveLength(1);
  });

  it('keeps SEND_WINDOW batches in flight, no more, and takes the acks in order', async () => {
    const batches = SEND_WINDOW * 3;
    const { fake, tap, running } = start({ dataFile: await dataFile('window.csv', batches), maxAmount: 1 });
    // At each ack the client takes, how many batches it had written and not yet seen acknowledged.
    const inFlight: number[] = [];
    tap.onEntry = (e) => {
      if (e.action === 'apuesta_enviada') inFlight.push(fake.batchesWritten - inFlight.length);
    };
    const peer = await fake.peer(0);
    await peer.accept(1);
    await peer.storeUntilFinished(); // acknowledges each batch as soon as it arrives
    await answerWinners(peer, []);
    await running;
    expect(SEND_WINDOW).toBe(2 * BATCH_WINDOW);
    expect(Math.max(...inFlight)).toBe(SEND_WINDOW);
    expect(inFlight.slice(0, batches - SEND_WINDOW).every((n) => n === SEND_WINDOW)).toBe(true);
    // Each batch is named by the index of its first bet: with one bet per batch, 0, 1, 2, ...
    expect(tap.find('apuesta_enviada', 'success').map((e) => e.lote)).toEqual(Array.from({ length: batches }, (_, i) => i));
  });

  it('counts a DUPLICATE batch as sent and a REJECTED one as refused, logging the reason and index', async () => {
    const { fake, tap, running } = start({ dataFile: await dataFile('acks.csv', 450) });
    const peer = await fake.peer(0);
    await peer.accept(1);
    const [b1, b2, b3] = [await peer.expect(MessageType.BATCH), await peer.expect(MessageType.BATCH), await peer.expect(MessageType.BATCH)];
    expect([b1.first, b2.first, b3.first]).toEqual([0, 150, 300]);
    peer.send({ type: MessageType.BATCH_ACK, first: b1.first, status: AckStatus.DUPLICATE, count: b1.count });
    peer.send({
      type: MessageType.BATCH_ACK,
      first: b2.first,
      status: AckStatus.REJECTED,
      index: 7,
      reason: 'bet 7: document "x" is not a number',
    });
    peer.stored(b3);
    await peer.expect(MessageType.FINISHED);
    peer.send({ type: MessageType.FINISHED_ACK, finished: 1, expected: 1 });
    await answerWinners(peer, []);
    expect(await running).toMatchObject({ sent: 300, duplicates: 150, written: 450, rejected: 150, batches: 3 });
    expect(tap.find('apuesta_enviada', 'fail')).toEqual([
      expect.objectContaining({ cantidad: 150, lote: 150, indice: 7, error: 'bet 7: document "x" is not a number' }),
    ]);
  });

  it('fails on an acknowledgement for a batch other than the oldest in flight', async () => {
    const { fake, running } = start({ dataFile: await dataFile('order.csv', 300) });
    const peer = await fake.peer(0);
    await peer.accept(1);
    await peer.expect(MessageType.BATCH);
    peer.stored(await peer.expect(MessageType.BATCH)); // batch 2 first
    await expect(running).rejects.toThrow(/acknowledgement for the batch from bet 150 arrived while the batch from bet 0 was in flight/);
  });

  it('surfaces an ERROR with its reason while a send waits for the server to read, and does not reconnect after it', async () => {
    const { fake, running } = start({ dataFile: await dataFile('error.csv', 20_000) });
    const peer = await fake.peer(0);
    await peer.accept(1);
    peer.stream.pause(); // reads nothing more: the client's writes back up
    await fake.backpressured;
    peer.send({ type: MessageType.ERROR, code: ErrorCode.INTERNAL, message: 'the pool is closed' });
    const err = await running.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ServerRefusedError);
    expect((err as ServerRefusedError).code).toBe(ErrorCode.INTERNAL);
    expect((err as Error).message).toMatch(/the pool is closed/);
    expect(fake.peers).toHaveLength(1);
  });

  it('fails with the cause when the server sends bytes that do not decode, without reconnecting', async () => {
    const garbled = start({ dataFile: await dataFile('garbled.csv', 300) });
    const p2 = await garbled.fake.peer(0);
    await p2.accept(1);
    p2.stream.write(Buffer.from([0xee, 0, 0, 0, 0]));
    await expect(garbled.running).rejects.toThrow(/undecodable reply/);
    expect(garbled.fake.peers).toHaveLength(1);
  });

  it('gives up at server.connectTimeout when the server never answers HELLO', async () => {
    const { fake, running } = start({ dataFile: await dataFile('mute.csv', 10), connectTimeoutMs: 200 });
    await (await fake.peer(0)).expect(MessageType.HELLO);
    await expect(running).rejects.toThrow(ConnectTimeoutError);
    await expect(running).rejects.toThrow(/no WELCOME in reply to HELLO/);
  });

  it('gives up at winners.timeout when no winners come, naming how many agencies had finished', async () => {
    const { fake, running } = start({ dataFile: await dataFile('nodraw.csv', 10), winnersTimeoutMs: 200 });
    const peer = await fake.peer(0);
    await peer.accept(1);
    await peer.storeUntilFinished(1, 2);
    await peer.expect(MessageType.WINNERS_QUERY);
    await expect(running).rejects.toThrow(WinnersTimeoutError);
    await expect(running).rejects.toThrow(/no draw after 200 ms: 1 of 2 agencies/);
  });

  it('asks for the winners again after NOT_READY', async () => {
    const { fake, running } = start({ dataFile: await dataFile('notready.csv', 10) });
    const peer = await fake.peer(0);
    await peer.accept(1);
    await peer.storeUntilFinished(2, 2);
    await peer.expect(MessageType.WINNERS_QUERY);
    peer.send({ type: MessageType.NOT_READY, finished: 2, expected: 2 });
    await answerWinners(peer, ['30000007']);
    expect((await running).winners).toEqual(['30000007']);
  });

  it('says HELLO again on a fresh connection while the server answers AGENCY_BUSY', async () => {
    const { fake, tap, running } = start({ dataFile: await dataFile('busy.csv', 10) });
    const first = await fake.peer(0);
    await first.expect(MessageType.HELLO);
    first.send({ type: MessageType.ERROR, code: ErrorCode.AGENCY_BUSY, message: 'agency 1 is already connected' });
    first.stream.end();
    const second = await fake.peer(1);
    await second.accept(1);
    await second.storeUntilFinished();
    await answerWinners(second, []);
    expect((await running).sent).toBe(10);
    await first.ended;
    const retry = tap.find('connect', 'in_progress');
    expect(retry).toEqual([expect.objectContaining({ intento: 1, error: 'server error 7: agency 1 is already connected' })]);
  });

  it('connects again after ERROR AUTH_TIMEOUT (a server too loaded to take its proof in time)', async () => {
    const { fake, tap, running } = start({ dataFile: await dataFile('slow-auth.csv', 10) });
    const first = await fake.peer(0);
    await first.expect(MessageType.HELLO);
    first.send({ type: MessageType.CHALLENGE, nonce: randomBytes(32) });
    await first.expect(MessageType.PROOF);
    first.send({ type: MessageType.ERROR, code: ErrorCode.AUTH_TIMEOUT, message: 'no valid PROOF within 5000 ms of connecting' });
    first.stream.end();
    const second = await fake.peer(1);
    await second.accept(1);
    await second.storeUntilFinished();
    await answerWinners(second, []);
    expect((await running).sent).toBe(10);
    expect(tap.find('connect', 'in_progress')).toEqual([
      expect.objectContaining({ intento: 1, error: `server error ${ErrorCode.AUTH_TIMEOUT}: no valid PROOF within 5000 ms of connecting` }),
    ]);
  });

  it('answers the CHALLENGE with HMAC-SHA256 of its key over label, version, agency and nonce', async () => {
    const keyText = 'k3y-'.repeat(10);
    const { fake, running } = start({ id: 3, dataFile: await dataFile('keyed.csv', 5), key: AgencyKey.parse(keyText) });
    const peer = await fake.peer(0);
    await peer.expect(MessageType.HELLO);
    const nonce = randomBytes(32);
    peer.send({ type: MessageType.CHALLENGE, nonce });
    const { mac } = await peer.expect(MessageType.PROOF);
    const expected = createHmac('sha256', keyText)
      .update(Buffer.concat([Buffer.from('loteria-proof-v2'), Buffer.from([0, 2, 0, 0, 0, 3]), nonce]))
      .digest();
    expect(mac.equals(expected)).toBe(true);
    peer.welcome(3, 0, false);
    await peer.storeUntilFinished();
    await answerWinners(peer, []);
    expect((await running).sent).toBe(5);
  });

  it('waits what an ERROR BUSY asks ("retry in N ms") before connecting again', async () => {
    const { fake, tap, running } = start({ dataFile: await dataFile('busy-hint.csv', 3) });
    const first = await fake.peer(0);
    first.send({
      type: MessageType.ERROR,
      code: ErrorCode.BUSY,
      message: 'server busy: 16 connections from 10.0.0.1 have not authenticated yet; retry in 321 ms',
    });
    first.stream.end();
    const second = await fake.peer(1);
    await second.accept(1);
    await second.storeUntilFinished();
    await answerWinners(second, []);
    expect((await running).sent).toBe(3);
    expect(tap.find('connect', 'in_progress')).toEqual([expect.objectContaining({ intento: 1, espera_ms: 321 })]);
  });

  it('gives up on AUTH_FAILED at once, saying that it has no key', async () => {
    const { fake, running } = start({ dataFile: await dataFile('nokey.csv', 3) });
    const peer = await fake.peer(0);
    await peer.expect(MessageType.HELLO);
    peer.send({ type: MessageType.CHALLENGE, nonce: randomBytes(32) });
    await peer.expect(MessageType.PROOF);
    peer.send({ type: MessageType.ERROR, code: ErrorCode.AUTH_FAILED, message: "the PROOF does not match agency 1's key" });
    peer.stream.end();
    const err = await running.then(
      () => null,
      (e: unknown) => e as ServerRefusedError,
    );
    expect(err).toBeInstanceOf(ServerRefusedError);
    expect(err?.code).toBe(ErrorCode.AUTH_FAILED);
    expect(err?.message).toMatch(/does not match agency 1's key \(this client has no key: set CLI_KEY_FILE/);
    expect(fake.peers).toHaveLength(1);
  });

  it('stop() while sending closes the file, then the socket, and the run ends without an error', async () => {
    const { fake, tap, client, running } = start({ dataFile: await dataFile('stop.csv', 20_000) });
    const peer = await fake.peer(0);
    await peer.accept(1);
    peer.stored(await peer.expect(MessageType.BATCH));
    await tap.waitFor((e) => e.action === 'apuesta_enviada');
    await client.stop();
    expect((await running).sent).toBe(150);
    await peer.ended;
    const closeFile = tap.indexOf('close_file');
    expect(closeFile, tap.text()).toBeGreaterThanOrEqual(0);
    expect(tap.indexOf('close_socket'), tap.text()).toBeGreaterThan(closeFile);
    expect(tap.find('close_socket')).toHaveLength(1);
  });

  it('stop() while the run is closing its socket after the winners waits for that close and its line', async () => {
    const { fake, tap, client, running } = start({ dataFile: await dataFile('stop-late.csv', 10) });
    let stopped: Promise<void> | null = null;
    // The run closes its socket right after this line: a SIGTERM lands in that close.
    tap.onEntry = (e) => {
      if (e.action === 'consulta_ganadores') stopped = client.stop();
    };
    const peer = await fake.peer(0);
    await peer.accept(1);
    await peer.storeUntilFinished(1, 1);
    await answerWinners(peer, []);
    await tap.waitFor((e) => e.action === 'consulta_ganadores');
    expect(stopped).not.toBeNull();
    await stopped;
    expect(tap.find('close_socket'), tap.text()).toHaveLength(1);
    expect(tap.indexOf('close_socket')).toBeGreaterThan(tap.indexOf('consulta_ganadores'));
    await running;
  });
});

describe('AgencyClient over TCP on 127.0.0.1', () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
    server = null;
  });

  it('retries a refused connection every 10 ms while a server would be starting, then with waits growing by half, then gives up at server.connectTimeout naming the address', async () => {
    const port = await freePort();
    const { tap, running } = start({ dataFile: await dataFile('refused.csv', 10), port, connectTimeoutMs: 1000 }, undefined, false);
    await expect(running).rejects.toThrow(ConnectTimeoutError);
    await expect(running).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${port} within 1000 ms .*ECONNREFUSED`));
    const retries = tap.find('connect', 'in_progress');
    expect(retries.map((e) => e.intento)).toEqual(retries.map((_, i) => i + 1));
    const waits = retries.map((e) => e.espera_ms as number);
    // Steady for 300 ms from the first attempt (each wait is 10 ms or more: at most 31 of them).
    const steady = waits.findIndex((w) => w !== 10);
    expect(steady).toBeGreaterThanOrEqual(1);
    expect(steady).toBeLessThanOrEqual(31);
    expect(waits.slice(steady, steady + 4)).toEqual([15, 23, 35, 53]);
  });

  it('connects once the server starts listening, then completes the run', async () => {
    const port = await freePort();
    const fake = new FakeServer();
    const { tap, running } = start({ dataFile: await dataFile('late.csv', 200), port }, fake, false);
    await tap.waitFor((e) => e.action === 'connect' && e.result === 'in_progress' && e.intento === 2);
    server = createServer((socket) => fake.accept(socket));
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    const peer = await fake.peer(0);
    await peer.accept(1);
    expect(await peer.storeUntilFinished()).toBe(200);
    await answerWinners(peer, []);
    expect(await running).toMatchObject({ sent: 200, batches: 2 });
    expect(tap.find('connect', 'success')).toHaveLength(1);
  });

  it('stop() while batches are unacknowledged ends the TCP connection cleanly, never with a reset', async () => {
    const fake = new FakeServer();
    server = createServer((socket) => fake.accept(socket));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const { tap, client, running } = start({ dataFile: await dataFile('stop-tcp.csv', 20_000), port }, fake, false);
    const peer = await fake.peer(0);
    await peer.accept(1);
    // Acknowledges every batch, so acks are still arriving when the client stops.
    peer.storeUntilFinished().catch(() => {});
    await tap.waitFor((e) => e.action === 'apuesta_enviada');
    await client.stop();
    await running;
    await peer.ended;
    expect(peer.errors).toEqual([]);
  });
});
