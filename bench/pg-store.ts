/**
 * `node dist/bench/pg-store.js [--bets N] [--agencies N] [--batch N] [--window N]
 *  [--configs SxF[xG],...] [--fast]`: the PostgreSQL backend's storeRuns throughput on a
 * throwaway cluster (fsync on unless --fast). A config `SxFxG` runs S server processes, each
 * one PostgresBackend with F group commits in flight of at most G bets, on a fresh database;
 * agency a belongs to server a mod S, and is a session sending runs of `window` batches and
 * awaiting their outcomes, as the server's sessions do. The servers start together (a
 * barrier on stdin). Prints bets/s, the servers' CPU and largest peak RSS, the database's CPU
 * (the cluster's processes, from /proc, read while the servers' connections live), the bets
 * table and the WAL written; then times export-bets on the last database. Batches are
 * encoded beforehand (a few per agency, cycled): the client's cost is not measured.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { Bet } from '../shared/domain/bet.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { HEADER_SIZE } from '../shared/protocol/messages.js';
import type { BatchIn } from '../server/storage/backend.js';
import { exportBets } from '../server/storage/postgres/export.js';
import { PostgresBackend } from '../server/storage/postgres/postgres-backend.js';
import { PgCluster } from '../tools/pg-cluster.js';
import { cpuDelta, databaseCpu } from './procs.js';

const { values: args } = parseArgs({
  options: {
    bets: { type: 'string', default: '1000000' },
    agencies: { type: 'string', default: '100' },
    batch: { type: 'string', default: '100' },
    window: { type: 'string', default: '32' },
    configs: { type: 'string', default: '1x1,1x2,2x2,1x2x10000' },
    fast: { type: 'boolean', default: false },
    // A server process: --url, its index and the config.
    url: { type: 'string' },
    index: { type: 'string' },
  },
  strict: true,
});
const BETS = Number(args.bets);
const AGENCIES = Number(args.agencies);
const BATCH = Number(args.batch);
const WINDOW = Number(args.window);
const configs = args.configs.split(',').map((c) => {
  const [servers, inFlight, groupBets = 50_000] = c.split('x').map(Number) as [number, number, number?];
  if (!(servers >= 1 && inFlight >= 1 && groupBets >= 1)) throw new Error(`--configs ${c}: write SERVERSxINFLIGHT[xGROUP_BETS], e.g. 2x2`);
  return { servers, inFlight, groupBets, spec: `${servers}x${inFlight}x${groupBets}` };
});
type Config = (typeof configs)[number];

function bet(agency: number, i: number): Bet {
  return {
    agency,
    firstName: 'María José',
    lastName: `Apellido${i % 97}`,
    document: String(30_000_000 + i),
    birthdate: '1990-05-17',
    number: (i * 31) % 10_000,
  };
}

function encoded(agency: number, variant: number): Buffer {
  const builder = new BatchBuilder(BATCH);
  for (let i = 0; i < BATCH; i++)
    if (!builder.add(bet(agency, variant * BATCH + i))) throw new Error(`--batch ${BATCH} does not fit one frame`);
  return Buffer.from(builder.take(0).subarray(HEADER_SIZE + 6));
}

async function session(backend: PostgresBackend, agency: number, batches: number, pool: readonly Buffer[]): Promise<void> {
  const { epoch } = await backend.claim(agency);
  for (let k = 0; k < batches; k += WINDOW) {
    const run: BatchIn[] = [];
    for (let j = k; j < Math.min(batches, k + WINDOW); j++) run.push({ first: j * BATCH, count: BATCH, bets: pool[j % pool.length]! });
    const [outcomes] = await backend.storeRuns([{ agency, epoch, batches: run }]);
    const bad = outcomes!.find((o) => o.status !== 'stored');
    if (bad !== undefined) throw new Error(`agency ${agency}: ${JSON.stringify(bad)}`);
  }
}

/** One server process: ready, go, run its agencies, report, wait for exit (its connections stay open until then). */
async function serve(url: string, index: number, c: Config): Promise<void> {
  const backend = await PostgresBackend.open({
    url,
    agencies: AGENCIES,
    serverId: `bench-${index}`,
    maxInFlight: c.inFlight,
    maxGroupBets: c.groupBets,
  });
  const mine = Array.from({ length: AGENCIES }, (_, a) => a + 1).filter((a) => a % c.servers === index);
  const pools = mine.map((a) => Array.from({ length: 8 }, (_, v) => encoded(a, v)));
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  process.stdout.write('ready\n');
  await lines.next();
  const cpu0 = process.cpuUsage();
  await Promise.all(mine.map((a, k) => session(backend, a, Math.ceil(BETS / AGENCIES / BATCH), pools[k]!)));
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  process.stdout.write(`${JSON.stringify({ cpuS: (cpu.user + cpu.system) / 1e6, peakRss })}\n`);
  await lines.next();
  await backend.close();
  process.exit(0);
}

function startServer(
  url: string,
  index: number,
  c: Config,
): { lines: AsyncIterator<string>; send(line: string): void; exited: Promise<unknown> } {
  const argv = [process.argv[1]!, '--url', url, '--index', String(index), '--configs', c.spec];
  const child = spawn(
    process.execPath,
    [...argv, '--bets', args.bets, '--agencies', args.agencies, '--batch', args.batch, '--window', args.window],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  return {
    lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator](),
    send: (line) => child.stdin!.write(`${line}\n`),
    exited: once(child, 'exit'),
  };
}

async function runConfig(cluster: PgCluster, url: string, c: Config): Promise<string> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const servers = Array.from({ length: c.servers }, (_, i) => startServer(url, i, c));
  for (const s of servers) if ((await s.lines.next()).value !== 'ready') throw new Error('a bench server failed to start');
  const lsn0 = (await admin.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
  const db0 = databaseCpu(cluster.dir);
  const t0 = performance.now();
  for (const s of servers) s.send('go');
  const reports = await Promise.all(
    servers.map(async (s) => JSON.parse((await s.lines.next()).value as string) as { cpuS: number; peakRss: number }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const dbCpu = cpuDelta(db0, databaseCpu(cluster.dir));
  const sizes = await admin.query<{ wal: string; bets: string; n: string }>(
    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint AS wal, pg_total_relation_size('loteria.bets') AS bets, (SELECT count(*) FROM loteria.bets) AS n",
    [lsn0],
  );
  for (const s of servers) s.send('exit');
  await Promise.all(servers.map((s) => s.exited));
  await admin.end();
  const stored = Number(sizes.rows[0]!.n);
  const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);
  return [
    c.spec,
    `${stored} bets`,
    `${seconds.toFixed(2)} s`,
    `${Math.round(stored / seconds).toLocaleString('en-US')} bets/s`,
    `servers CPU ${reports.reduce((s, r) => s + r.cpuS, 0).toFixed(2)} s`,
    `peak RSS ${mb(Math.max(...reports.map((r) => r.peakRss)))} MB`,
    `database CPU ${dbCpu.toFixed(2)} s`,
    `bets table ${mb(Number(sizes.rows[0]!.bets))} MB, WAL ${mb(Number(sizes.rows[0]!.wal))} MB`,
  ].join(' | ');
}

/** export-bets on a database, in this (small) process: time and peak RSS. */
async function measureExport(url: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pg-export-'));
  try {
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const t0 = performance.now();
    const { rows } = await exportBets({ url, out: join(dir, 'bets.csv') });
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const mb = (n: number): string => (n / 2 ** 20).toFixed(0);
    const file = statSync(join(dir, 'bets.csv')).size;
    return `export-bets | ${rows} rows | ${seconds.toFixed(2)} s | ${Math.round(rows / seconds).toLocaleString('en-US')} rows/s | RSS ${mb(before)} -> peak ${mb(peak)} MB | ${mb(file)} MB file`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (args.url !== undefined) {
  await serve(args.url, Number(args.index), configs[0]!);
} else {
  const cluster = await PgCluster.start({ fast: args.fast });
  try {
    process.stdout.write(
      `pg-store: ${BETS} bets, ${AGENCIES} agencies, batches of ${BATCH}, windows of ${WINDOW}, fsync ${args.fast ? 'off' : 'on'}\n`,
    );
    process.stdout.write('config: server processes x group commits in flight x bets per group\n');
    let url = '';
    for (const [n, c] of configs.entries()) {
      url = await cluster.createDatabase(`bench_${n}`);
      process.stdout.write(`${await runConfig(cluster, url, c)}\n`);
    }
    process.stdout.write(`${await measureExport(url)}\n`);
  } finally {
    await cluster.stop();
  }
}
