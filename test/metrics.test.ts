/**
 * The Prometheus endpoint (SERVER_METRICS_PORT): scraped over real HTTP on 127.0.0.1 during
 * and after a real run (server and client processes from dist/), its counters checked against
 * what the run left behind (rows in the bets file, acks the clients logged, the draw); the
 * hooks in-process on Sessions over duplexPair (batches by result, connections by state);
 * the endpoint's own HTTP behaviour and close; its settings. The exposition text is parsed
 * here with a regex, not with prom-client.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadServerConfig } from '../server/config.js';
import { MetricsEndpoint, MetricsListenError } from '../server/metrics/metrics-endpoint.js';
import { ServerMetrics } from '../server/metrics/server-metrics.js';
import { ConfigError } from '../shared/config/values.js';
import { WINNING_NUMBER } from '../shared/domain/bet.js';
import { FrameDecoder, encodeMessage } from '../shared/protocol/codec.js';
import { AckStatus, MessageType } from '../shared/protocol/messages.js';
import { generateAgencyFile } from '../tools/gen-data/files.js';
import {
  SERVER_INI,
  countStoredRows,
  killAll,
  makeTempDir,
  readAgencyRows,
  removeDir,
  spawnServer,
  startClient,
  startServer,
  type Proc,
} from './helpers/processes.js';
import { numberedBatches, openDurable } from './helpers/durable.js';
import { SessionHarness, batch, bet, hello, ping, proof } from './helpers/session-harness.js';

let dir: string;
const cleanups: Array<() => unknown> = [];
beforeAll(async () => {
  dir = await makeTempDir('metrics');
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await killAll();
});
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

/** `name{labels} value` lines of the text exposition format, keyed `name{labels}` exactly as written. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m !== null) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** One sample; fails the test when the series is absent. */
function value(samples: Map<string, number>, series: string): number {
  const v = samples.get(series);
  if (v === undefined) throw new Error(`no series ${series} in:\n${[...samples.keys()].join('\n')}`);
  return v;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

/** Bets in the client's `apuesta_enviada | result: success` lines, and how many such lines (acks). */
function acked(client: Proc): { bets: number; batches: number } {
  const lines = client.log.filter((l) => l.action === 'apuesta_enviada' && l.result === 'success');
  return { bets: lines.reduce((n, l) => n + Number(l.fields.cantidad), 0), batches: lines.length };
}

/** A raw connection that said PING and heard PONG: the server holds an unbound session for it. */
async function probe(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  cleanups.push(() => socket.destroy());
  const decoder = new FrameDecoder();
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      if (decoder.push(chunk).length > 0) resolve();
    });
    socket.write(encodeMessage({ type: MessageType.PING }));
  });
  return socket;
}

describe('a real run, scraped over HTTP', () => {
  it('counts what the run did: bets = rows in the file, batches = acks the clients logged, every agency finished, one draw', async () => {
    const sizes = [1200, 700, 301];
    const files = await Promise.all(
      sizes.map(async (rows, i) => {
        const path = join(dir, `agency-${i + 1}.csv`);
        await generateAgencyFile({ path, agency: i + 1, seed: 11 + i, rows });
        return path;
      }),
    );
    const inputs = await Promise.all(files.map(readAgencyRows));
    const totalRows = inputs.reduce((n, rows) => n + rows.length, 0);
    const storagePath = join(dir, 'run-bets.csv');
    // DEBUG: the probe's clean disconnect is logged (at DEBUG only), and the test waits for it.
    const { proc: server, port } = await startServer({
      storagePath,
      agencies: 3,
      env: { SERVER_METRICS_PORT: '0', LOGGING_LEVEL: 'DEBUG' },
    });
    const line = server.log.find((l) => l.action === 'metrics');
    expect(line, server.text).toMatchObject({ result: 'success', fields: { host: '127.0.0.1', ruta: '/metrics' } });
    const mport = Number(line!.fields.puerto);
    expect(mport).toBeGreaterThan(0);

    const before = await scrape(mport);
    expect(value(before, 'loteria_bets_stored_total')).toBe(0);
    for (const result of ['stored', 'duplicate', 'rejected']) expect(value(before, `loteria_batches_total{result="${result}"}`)).toBe(0);
    expect(value(before, 'loteria_agencies_expected')).toBe(3);
    expect(value(before, 'loteria_agencies_finished')).toBe(0);
    expect(value(before, 'loteria_draw_state{state="waiting"}')).toBe(1);
    expect(value(before, 'loteria_connections{state="bound"}')).toBe(0);
    expect(value(before, 'loteria_connections{state="unbound"}')).toBe(0);
    expect(value(before, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

    // During the run: agencies 1 and 2 have sent everything and wait for a draw that needs agency 3.
    const sock = await probe(port);
    const early = [1, 2].map((id) => startClient({ port, id, dataFile: files[id - 1]! }));
    await Promise.all(early.map((c) => c.waitForAction('notificacion_enviada', 'success')));
    const during = await scrape(mport);
    const earlyAcks = early.map(acked);
    expect(value(during, 'loteria_bets_stored_total')).toBe(sizes[0]! + sizes[1]!);
    expect(earlyAcks.reduce((n, a) => n + a.bets, 0)).toBe(sizes[0]! + sizes[1]!);
    expect(value(during, 'loteria_batches_total{result="stored"}')).toBe(earlyAcks.reduce((n, a) => n + a.batches, 0));
    expect(value(during, 'loteria_agencies_finished')).toBe(2);
    expect(value(during, 'loteria_draw_state{state="waiting"}')).toBe(1);
    expect(value(during, 'loteria_draws_total{result="success"}')).toBe(0);
    expect(value(during, 'loteria_connections{state="bound"}')).toBe(2);
    expect(value(during, 'loteria_connections{state="unbound"}')).toBe(1);

    sock.end();
    await server.waitFor((l) => l.action === 'desconexion' && l.fields.agencia === '0');
    const last = startClient({ port, id: 3, dataFile: files[2]! });
    const clients = [...early, last];
    for (const c of clients) expect((await c.waitExit()).code, c.text).toBe(0);
    // Each client's connection is closed on the server's side once its desconexion line is out.
    for (const id of [1, 2, 3]) await server.waitFor((l) => l.action === 'desconexion' && l.fields.agencia === String(id));

    const after = await scrape(mport);
    const acks = clients.map(acked);
    const rowsInFile = await countStoredRows(storagePath);
    expect(rowsInFile).toBe(totalRows);
    expect(value(after, 'loteria_bets_stored_total')).toBe(rowsInFile);
    expect(value(after, 'loteria_batches_total{result="stored"}')).toBe(acks.reduce((n, a) => n + a.batches, 0));
    for (const [series, n] of after)
      if (series.startsWith('loteria_batches_total{') && !series.includes('"stored"')) expect(n, series).toBe(0);
    expect(value(after, 'loteria_ack_latency_seconds_count')).toBe(acks.reduce((n, a) => n + a.batches, 0));
    expect(value(after, 'loteria_ack_latency_seconds_sum')).toBeGreaterThan(0);
    expect(value(after, 'loteria_agencies_finished')).toBe(3);
    expect(value(after, 'loteria_draws_total{result="success"}')).toBe(1);
    expect(value(after, 'loteria_draws_total{result="fail"}')).toBe(0);
    expect(value(after, 'loteria_draw_state{state="done"}')).toBe(1);
    expect(value(after, 'loteria_draw_state{state="waiting"}')).toBe(0);
    expect(value(after, 'loteria_draw_bets_scanned')).toBe(rowsInFile);
    expect(value(after, 'loteria_draw_duration_seconds')).toBeGreaterThan(0);
    // SERVER_FSYNC is on (server/config.ini): one figure per group commit, at most one per batch.
    const fsyncs = value(after, 'loteria_fsync_seconds_count');
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThanOrEqual(acks.reduce((n, a) => n + a.batches, 0));
    expect(value(after, 'loteria_fsync_seconds_sum')).toBeGreaterThan(0);
    expect(value(after, 'loteria_connections{state="bound"}')).toBe(0);
    expect(value(after, 'loteria_connections{state="unbound"}')).toBe(0);
    // The draw's winners, counted from the input files here, are what the clients were told.
    const winners = inputs.map((rows) => rows.filter((r) => Number(r[4]) === WINNING_NUMBER).length);
    expect(clients.map((c) => Number(c.log.find((l) => l.action === 'consulta_ganadores')?.fields.cant_ganadores))).toEqual(winners);

    server.signal('SIGTERM');
    expect((await server.waitExit()).code, server.text).toBe(0);
    const order = ['close_acceptor', 'close_metrics', 'close_pool', 'exit'].map((a) => server.indexOf(a, 'success'));
    expect(
      order.every((at, i) => at >= 0 && (i === 0 || at > order[i - 1]!)),
      server.text,
    ).toBe(true);
    await expect(fetch(`http://127.0.0.1:${mport}/metrics`)).rejects.toThrow();
  });

  it('is off by default: no endpoint and no metrics line', async () => {
    const { proc: server } = await startServer({ storagePath: join(dir, 'off-bets.csv'), agencies: 1 });
    server.signal('SIGTERM');
    expect((await server.waitExit()).code).toBe(0);
    expect(server.indexOf('metrics'), server.text).toBe(-1);
    expect(server.indexOf('close_metrics'), server.text).toBe(-1);
  });

  it('a metrics port already taken: the server says which setting to change and exits 1', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(resolve)));
    const taken = (blocker.address() as { port: number }).port;
    const server = spawnServer({
      SERVER_PORT: '0',
      SERVER_AGENCIES: '1',
      SERVER_STORAGE_PATH: join(dir, 'taken-bets.csv'),
      SERVER_METRICS_PORT: String(taken),
    });
    expect((await server.waitExit()).code, server.text).toBe(1);
    expect(server.log.find((l) => l.action === 'listen')).toMatchObject({
      result: 'fail',
      fields: {
        error: expect.stringMatching(
          new RegExp(`cannot listen on 127\\.0\\.0\\.1 port ${taken} \\(EADDRINUSE\\); set SERVER_METRICS_PORT`),
        ),
      },
    });
  });
});

describe('the hooks, on Sessions over duplexPair', () => {
  it('counts batches by result (stored, duplicate, rejected, out_of_order), bets stored, an ack latency per batch, and connections by state', async () => {
    const metrics = new ServerMetrics();
    const h = await SessionHarness.open({ agencies: 2, metrics });
    cleanups.push(() => h.close());
    const samples = async (): Promise<Map<string, number>> => parse(await metrics.text());

    const p = h.connect();
    expect(value(await samples(), 'loteria_connections{state="unbound"}')).toBe(1);
    p.stream.write(hello(1));
    expect(await p.next()).toMatchObject({ type: MessageType.CHALLENGE });
    expect(value(await samples(), 'loteria_connections{state="unbound"}'), 'bound only once the PROOF is taken').toBe(1);
    p.stream.write(proof());
    expect(await p.next()).toMatchObject({ type: MessageType.WELCOME });
    let s = await samples();
    expect([value(s, 'loteria_connections{state="unbound"}'), value(s, 'loteria_connections{state="bound"}')]).toEqual([0, 1]);

    const good = [bet(1, '100', 1), bet(1, '101', 7574), bet(1, '102', 2)];
    // Each batch on its own, followed by a PING: its PONG comes once the batch's handler has returned.
    const send = async (frame: Buffer, status: number): Promise<void> => {
      p.stream.write(Buffer.concat([frame, ping()]));
      expect(await p.next()).toMatchObject({ type: MessageType.BATCH_ACK, status });
      expect(await p.next()).toMatchObject({ type: MessageType.PONG });
    };
    await send(batch(0, good), AckStatus.STORED);
    await send(batch(0, good), AckStatus.DUPLICATE); // a retransmission, not stored again
    await send(batch(3, [bet(1, '103', 3), bet(1, '10x', 4)]), AckStatus.REJECTED); // a bad document (bets 3 and 4 consumed)
    await send(batch(9, [bet(1, '109', 9)]), AckStatus.OUT_OF_ORDER); // the server expects bet 5
    s = await samples();
    expect(value(s, 'loteria_bets_stored_total')).toBe(3);
    expect(value(s, 'loteria_batches_total{result="stored"}')).toBe(1);
    expect(value(s, 'loteria_batches_total{result="duplicate"}')).toBe(1);
    expect(value(s, 'loteria_batches_total{result="rejected"}')).toBe(1);
    expect(value(s, 'loteria_batches_total{result="out_of_order"}')).toBe(1);
    expect(value(s, 'loteria_ack_latency_seconds_count')).toBe(4);

    p.hangUp();
    await p.session.close();
    s = await samples();
    expect([value(s, 'loteria_connections{state="unbound"}'), value(s, 'loteria_connections{state="bound"}')]).toEqual([0, 0]);
  });

  it('an unbound connection that closes leaves the unbound count', async () => {
    const metrics = new ServerMetrics();
    const h = await SessionHarness.open({ agencies: 1, metrics });
    cleanups.push(() => h.close());
    const peers = [h.connect(), h.connect()];
    expect(value(parse(await metrics.text()), 'loteria_connections{state="unbound"}')).toBe(2);
    peers[0]!.hangUp();
    await peers[0]!.session.close();
    expect(value(parse(await metrics.text()), 'loteria_connections{state="unbound"}')).toBe(1);
  });
});

describe('the fsync time, from the pool worker', () => {
  it('one figure per store task with SERVER_FSYNC on, none with it off', async () => {
    for (const fsync of [true, false]) {
      const seen: number[] = [];
      const store = openDurable(join(dir, `fsync-${fsync}.csv`), 1, { fsync, onFsync: (s) => seen.push(s) });
      cleanups.push(() => store.close());
      // Two calls in one event-loop turn share one task (group commit); the third is a task of its own.
      const [a, b] = await Promise.all([
        store.pool.storeBatches(1, numberedBatches(1, 0, [10])),
        store.pool.storeBatches(1, numberedBatches(1, 10, [5])),
      ]);
      const c = await store.pool.storeBatches(1, numberedBatches(1, 15, [1]));
      expect([...a!, ...b!, ...c!].every((r) => r.ok)).toBe(true);
      if (fsync) {
        expect(seen).toHaveLength(2);
        for (const s of seen) expect(s).toBeGreaterThan(0);
      } else expect(seen).toEqual([]);
    }
  });
});

describe('the endpoint', () => {
  async function started(): Promise<MetricsEndpoint> {
    const endpoint = await MetricsEndpoint.start(new ServerMetrics(), '127.0.0.1', 0);
    cleanups.push(() => endpoint.close());
    return endpoint;
  }

  it('answers GET and HEAD /metrics, 404 elsewhere, 405 to other methods', async () => {
    const { port } = (await started()).address;
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/metrics?x=1`)).status).toBe(200);
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const missing = await fetch(`${base}/`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toMatch(/\/metrics/);
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('close() ends a kept-alive connection, is idempotent, and the port is free afterwards', async () => {
    const endpoint = await started();
    const { port } = endpoint.address;
    await scrape(port); // fetch keeps its connection alive
    const first = endpoint.close();
    expect(endpoint.close()).toBe(first);
    await first;
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
    const again = await MetricsEndpoint.start(new ServerMetrics(), '127.0.0.1', port);
    await again.close();
  });

  it('a port in use is refused with MetricsListenError naming SERVER_METRICS_PORT', async () => {
    const { port } = (await started()).address;
    const err = await MetricsEndpoint.start(new ServerMetrics(), '127.0.0.1', port).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetricsListenError);
    expect((err as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1 port ${port} \\(EADDRINUSE\\).*SERVER_METRICS_PORT`));
  });
});

describe('settings', () => {
  const load = (env: Record<string, string>) => loadServerConfig({ SERVER_CONFIG: SERVER_INI, SERVER_AUTH: 'off', ...env });

  it('off unless SERVER_METRICS_PORT is set; the host follows SERVER_HOST unless SERVER_METRICS_HOST is set', () => {
    expect(load({})).toMatchObject({ metricsPort: null, metricsHost: '0.0.0.0' });
    expect(load({ SERVER_HOST: '127.0.0.1', SERVER_METRICS_PORT: '0' })).toMatchObject({ metricsPort: 0, metricsHost: '127.0.0.1' });
    expect(load({ SERVER_METRICS_PORT: '9464', SERVER_METRICS_HOST: '127.0.0.2' })).toMatchObject({
      metricsPort: 9464,
      metricsHost: '127.0.0.2',
    });
  });

  it('refuses a port that is not one, or the server port itself', () => {
    expect(() => load({ SERVER_METRICS_PORT: 'abc' })).toThrow(ConfigError);
    expect(() => load({ SERVER_METRICS_PORT: '70000' })).toThrow(/SERVER_METRICS_PORT: 70000 is out of range/);
    expect(() => load({ SERVER_PORT: '9464', SERVER_METRICS_PORT: '9464' })).toThrow(/SERVER_METRICS_PORT: 9464 is SERVER_PORT too/);
  });
});
