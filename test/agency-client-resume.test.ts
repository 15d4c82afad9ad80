/**
 * The agency client riding out a lost server (protocol 2): it resumes where WELCOME's `next`
 * says — numbering each batch by the index of its first bet, skipping the bets the server
 * holds — after a reset, an EOF, ERROR SHUTTING_DOWN or OUT_OF_ORDER; it reconnects with
 * backoff for up to server.reconnectTimeout, logging each attempt; a server that does not come
 * back ends the run saying how many bets are known to be stored; stop() while reconnecting
 * ends the run cleanly. With several servers each attempt goes to the next one (round robin).
 * Over `stream.duplexPair()` and, for refused connections, real TCP.
 */
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgencyClient, type RunSummary } from '../client/agency-client.js';
import type { ClientConfig } from '../client/config.js';
import { DialError, roundRobinDialer, type Dialer } from '../client/dial.js';
import { ServerGoneError } from '../client/errors.js';
import { AckStatus, ErrorCode, MessageType } from '../shared/protocol/messages.js';
import { FakeServer, type FakePeer } from './helpers/fake-server.js';
import { LogTap } from './helpers/log-tap.js';
import { makeTempDir, removeDir } from './helpers/processes.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('agency-resume');
});
afterAll(() => removeDir(dir));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** `rows` valid rows, numbers 0, 1, 2, ...; a bad row (a birth date that is no date) after each `badEvery` rows. */
async function dataFile(name: string, rows: number, badEvery = 0): Promise<string> {
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    lines.push(`Ana,Paz,${30_000_000 + i},1990-01-02,${i % 10_000}\n`);
    if (badEvery > 0 && (i + 1) % badEvery === 0) lines.push(`Ana,Paz,1,1990-02-30,1\n`);
  }
  const path = join(dir, name);
  await writeFile(path, lines.join(''));
  return path;
}

function start(over: Partial<ClientConfig> & { dataFile: string }, fake: FakeServer | null = new FakeServer(), dial?: Dialer) {
  const base = {
    id: 1,
    host: '127.0.0.1',
    port: 1,
    connectTimeoutMs: 5000,
    reconnectTimeoutMs: 5000,
    maxAmount: 100,
    logLevel: 'debug',
    winnersTimeoutMs: 5000,
    key: null,
    tls: null,
    ...over,
  };
  const config: ClientConfig = { ...base, servers: over.servers ?? [{ host: base.host, port: base.port }] };
  const tap = new LogTap();
  const client = fake === null ? new AgencyClient(config, tap.log, dial) : new AgencyClient(config, tap.log, dial ?? fake.dial);
  const running: Promise<RunSummary> = client.run();
  running.catch(() => {});
  cleanups.push(
    () => fake?.close(),
    () => client.stop(),
  );
  return { tap, client, running };
}

/** Reads BATCH frames until FINISHED, acknowledging each STORED; returns their [first, count]. */
async function storeAll(peer: FakePeer): Promise<Array<[number, number]>> {
  const got: Array<[number, number]> = [];
  for (let msg = await peer.next(); msg.type !== MessageType.FINISHED; msg = await peer.next()) {
    if (msg.type !== MessageType.BATCH) throw new Error(`unexpected message type ${msg.type}`);
    got.push([msg.first, msg.count]);
    peer.stored(msg);
  }
  peer.send({ type: MessageType.FINISHED_ACK, finished: 1, expected: 1 });
  await peer.expect(MessageType.WINNERS_QUERY);
  peer.send({ type: MessageType.WINNERS, last: true, documents: [] });
  return got;
}

/** The bets covered by batches [first, count], each index once, in order, or a description of what is wrong. */
function covered(batches: Array<[number, number]>): number[] {
  return batches.flatMap(([first, count]) => Array.from({ length: count }, (_, i) => first + i));
}

describe('AgencyClient resuming over a duplexPair', () => {
  it('starts from WELCOME next: skips the bets the server holds and numbers batches by bet index', async () => {
    const fake = new FakeServer();
    const { running } = start({ dataFile: await dataFile('from.csv', 1000) }, fake);
    const peer = await fake.peer(0);
    await peer.accept(1, 250);
    const batches = await storeAll(peer);
    expect(batches[0]).toEqual([250, 100]);
    expect(covered(batches)).toEqual(Array.from({ length: 750 }, (_, i) => 250 + i));
    expect(await running).toMatchObject({ sent: 750, resumed: 250, rejected: 0 });
  });

  it.each([
    ['the server ends the connection', (p: FakePeer) => p.stream.end()],
    [
      'ERROR SHUTTING_DOWN',
      (p: FakePeer) => p.send({ type: MessageType.ERROR, code: ErrorCode.SHUTTING_DOWN, message: 'the server is shutting down' }),
    ],
  ])('after %s mid-run, reconnects and resumes where the new WELCOME says', async (_what, lose) => {
    const fake = new FakeServer();
    const { tap, running } = start({ dataFile: await dataFile('lost.csv', 1000) }, fake);
    const first = await fake.peer(0);
    await first.accept(1);
    // Two batches acknowledged, more in flight, then the server goes away having stored 350 bets.
    for (let i = 0; i < 2; i++) first.stored(await first.expect(MessageType.BATCH));
    await first.expect(MessageType.BATCH);
    lose(first);
    const second = await fake.peer(1);
    await second.accept(1, 350);
    const batches = await storeAll(second);
    expect(covered(batches)).toEqual(Array.from({ length: 650 }, (_, i) => 350 + i));
    // The 2 acks may or may not have been read before the loss: either way each bet is counted once.
    const summary = await running;
    expect(summary.sent + summary.resumed).toBe(1000);
    expect(summary.sent).toBeGreaterThanOrEqual(650);
    expect(tap.find('reconexion', 'in_progress')[0]).toMatchObject({ intento: 1 });
    expect(tap.find('reconexion', 'success')).toEqual([expect.objectContaining({ siguiente: 350 })]);
  });

  it('counts and logs the acks that came before an ERROR SHUTTING_DOWN which cut a send short', async () => {
    const rows = 20_000;
    const fake = new FakeServer();
    const { tap, running } = start({ dataFile: await dataFile('cut.csv', rows) }, fake);
    const first = await fake.peer(0);
    await first.accept(1);
    first.stream.pause(); // as a closing server does: it reads nothing more, and the client's send waits for 'drain'
    await fake.backpressured;
    // The server had stored the first two batches (100 bets each): their acks, then the ERROR.
    for (const lote of [0, 100]) first.stored({ first: lote, count: 100 });
    first.send({ type: MessageType.ERROR, code: ErrorCode.SHUTTING_DOWN, message: 'the server is shutting down' });
    await tap.waitFor((e) => e.action === 'conexion' && e.result === 'fail');
    first.stream.resume(); // lets the client's side close
    const second = await fake.peer(1);
    await second.accept(1, 200);
    expect(covered(await storeAll(second))).toEqual(Array.from({ length: rows - 200 }, (_, i) => 200 + i));
    expect(await running).toMatchObject({ sent: rows, resumed: 0 });
    const acked = tap.find('apuesta_enviada', 'success').map((e) => e.lote);
    expect(acked.slice(0, 2)).toEqual([0, 100]);
    expect(tap.find('conexion', 'fail')).toEqual([expect.objectContaining({ error: expect.stringMatching(/shutting down/) })]);
  });

  it('on OUT_OF_ORDER reconnects and resumes from the next the server holds', async () => {
    const fake = new FakeServer();
    const { running } = start({ dataFile: await dataFile('ooo.csv', 300) }, fake);
    const first = await fake.peer(0);
    await first.accept(1, 0);
    const b = await first.expect(MessageType.BATCH);
    first.send({ type: MessageType.BATCH_ACK, first: b.first, status: AckStatus.OUT_OF_ORDER, next: 100 });
    const second = await fake.peer(1);
    await second.accept(1, 100);
    expect(covered(await storeAll(second))).toEqual(Array.from({ length: 200 }, (_, i) => 100 + i));
    expect(await running).toMatchObject({ sent: 200, resumed: 100 });
  });

  it('reports each bad row once, though every connection reads the file again', async () => {
    const fake = new FakeServer();
    const { tap, running } = start({ dataFile: await dataFile('bad.csv', 300, 100) }, fake);
    const first = await fake.peer(0);
    await first.accept(1);
    first.stored(await first.expect(MessageType.BATCH));
    first.stream.end();
    const second = await fake.peer(1);
    await second.accept(1, 100);
    // Valid bets are numbered without the bad rows: 300 valid bets, indexes 0..299.
    expect(covered(await storeAll(second))).toEqual(Array.from({ length: 200 }, (_, i) => 100 + i));
    expect(await running).toMatchObject({ badRows: 3 });
    expect(tap.find('apuesta_invalida').map((e) => e.linea)).toEqual([101, 202, 303]);
  });
});

describe('AgencyClient with several servers (server.address h1:p1,h2:p2,...)', () => {
  it('skips a server that refuses, and when its server goes away moves to the next, resuming from its WELCOME', async () => {
    const one = new FakeServer();
    const two = new FakeServer();
    cleanups.push(
      () => one.close(),
      () => two.close(),
    );
    let refused = 0;
    const down: Dialer = async () => {
      refused++;
      throw new DialError('127.0.0.1:3', 'ECONNREFUSED');
    };
    const dial = roundRobinDialer([
      { address: '127.0.0.1:3', dial: down },
      { address: '127.0.0.1:1', dial: one.dial },
      { address: '127.0.0.1:2', dial: two.dial },
    ]);
    const { tap, running } = start({ dataFile: await dataFile('servers.csv', 1000) }, null, dial);
    // The first server refuses: the next attempt goes to the second.
    const first = await one.peer(0);
    await first.accept(1);
    for (let i = 0; i < 2; i++) first.stored(await first.expect(MessageType.BATCH));
    first.stream.end();
    // Lost: the reconnection goes to the third, which holds 300 bets of the agency (stored through the second).
    const second = await two.peer(0);
    await second.accept(1, 300);
    expect(covered(await storeAll(second))).toEqual(Array.from({ length: 700 }, (_, i) => 300 + i));
    const summary = await running;
    expect(summary.sent + summary.resumed).toBe(1000);
    expect(refused).toBe(1);
    expect([one.peers.length, two.peers.length]).toEqual([1, 1]);
    expect(tap.find('connect', 'in_progress')).toEqual([expect.objectContaining({ intento: 1, servidor: '127.0.0.1/1' })]);
    expect(tap.find('reconexion', 'in_progress')).toEqual([expect.objectContaining({ intento: 1, servidor: '127.0.0.1/2' })]);
    expect(tap.find('connect', 'success').map((l) => l.servidor)).toEqual(['127.0.0.1/1', '127.0.0.1/2']);
  });
});

describe('AgencyClient when the server does not come back (TCP on 127.0.0.1)', () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
    server = null;
  });

  /** A fake server on TCP that stores 2 batches of 100, then closes its port and the connection. */
  async function vanishingServer(): Promise<{ port: number; gone: Promise<void> }> {
    const fake = new FakeServer();
    cleanups.push(() => fake.close());
    server = createServer((socket) => fake.accept(socket));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const gone = (async () => {
      const peer = await fake.peer(0);
      await peer.accept(1, 0);
      for (let i = 0; i < 2; i++) peer.stored(await peer.expect(MessageType.BATCH));
      // Stop listening first (close() waits for open connections), then drop the connection.
      const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
      server = null;
      peer.stream.destroy();
      await closed;
    })();
    return { port, gone };
  }

  it('retries with backoff for server.reconnectTimeout, then fails saying how many bets are known to be stored', async () => {
    const { port, gone } = await vanishingServer();
    const { tap, running } = start({ dataFile: await dataFile('gone.csv', 1000), port, reconnectTimeoutMs: 600 }, null);
    await gone;
    const err = await running.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ServerGoneError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `127\\.0\\.0\\.1:${port} did not come back within 600 ms .*ECONNREFUSED.*; 200 bets of this agency are known to be stored`,
      ),
    );
    const attempts = tap.find('reconexion', 'in_progress').map((e) => e.intento);
    expect(attempts.length).toBeGreaterThan(1);
    expect(attempts).toEqual(attempts.map((_, i) => i + 1));
  });

  it('stop() while reconnecting ends the run without an error', async () => {
    const { port, gone } = await vanishingServer();
    const { tap, client, running } = start({ dataFile: await dataFile('stop.csv', 1000), port, reconnectTimeoutMs: 60_000 }, null);
    await gone;
    await tap.waitFor((e) => e.action === 'reconexion' && e.intento === 2);
    await client.stop();
    expect(await running).toMatchObject({ sent: 200 });
    expect(tap.find('close_file').length).toBeGreaterThan(0);
  });
});
