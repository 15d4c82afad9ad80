/**
 * `node dist/bench/pg-store.js [--bets N] [--agencies N] [--batch N] [--window N]
 *  [--configs SxF,...] [--fast]`: the PostgreSQL backend's storeRuns throughput on a
 * throwaway cluster (fsync on unless --fast). Each config `SxF` runs S backends (servers,
 * in this one process) with F group commits in flight each, on a fresh database; every
 * agency is a session sending runs of `window` batches and awaiting their outcomes, as the
 * server's sessions do. Prints bets/s, this process's CPU and peak RSS, and the database's
 * CPU (every postgres process of the cluster, from /proc). Batches are encoded beforehand
 * (a few per agency, cycled): the client's cost is not measured.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import type { Bet } from '../shared/domain/bet.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { HEADER_SIZE } from '../shared/protocol/messages.js';
import type { BatchIn } from '../server/storage/backend.js';
import { PostgresBackend } from '../server/storage/postgres/postgres-backend.js';
import { PgCluster } from '../tools/pg-cluster.js';

const CLK_TCK = 100;
const run = promisify(execFile);
const { values: args } = parseArgs({
  options: {
    bets: { type: 'string', default: '1000000' },
    agencies: { type: 'string', default: '100' },
    batch: { type: 'string', default: '100' },
    window: { type: 'string', default: '32' },
    configs: { type: 'string', default: '1x1,1x2,2x2,1x2x10000' },
    fast: { type: 'boolean', default: false },
    url: { type: 'string' },
    pgdir: { type: 'string' },
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
  return { servers, inFlight, groupBets };
});

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

/** utime + stime, in seconds, of the postmaster of the cluster in `dir` and of its children (the backends still connected). */
function databaseCpu(dir: string): Map<number, number> {
  const postmaster = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const cpu = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      if (pid !== postmaster && Number(fields[1]) !== postmaster) continue;
      cpu.set(pid, (Number(fields[11]) + Number(fields[12])) / CLK_TCK);
    } catch {
      // The process ended while we looked.
    }
  }
  return cpu;
}

const cpuDelta = (before: Map<number, number>, after: Map<number, number>): number =>
  [...after].reduce((s, [pid, t]) => s + t - (before.get(pid) ?? 0), 0);

async function session(backend: PostgresBackend, agency: number, batches: number, pool: readonly Buffer[]): Promise<void> {
  const { epoch } = await backend.claim(agency);
  for (let k = 0; k < batches; k += WINDOW) {
    const run: BatchIn[] = [];
    for (let j = k; j < Math.min(batches, k + WINDOW); j++) run.push({ first: j * BATCH, count: BATCH, bets: pool[j % pool.length]! });
    const [outcomes] = await backend.storeRuns([{ agency, epoch, batches: run }]);
    if (outcomes!.some((o) => o.status !== 'stored'))
      throw new Error(`agency ${agency}: ${JSON.stringify(outcomes!.find((o) => o.status !== 'stored'))}`);
  }
}

async function runConfig(url: string, pgdir: string, { servers, inFlight, groupBets }: (typeof configs)[number]): Promise<string> {
  const backends = await Promise.all(
    Array.from({ length: servers }, (_, s) =>
      PostgresBackend.open({ url, agencies: AGENCIES, serverId: `bench-${s}`, maxInFlight: inFlight, maxGroupBets: groupBets }),
    ),
  );
  const perAgency = Math.ceil(BETS / AGENCIES / BATCH);
  const pools = Array.from({ length: AGENCIES }, (_, a) => Array.from({ length: 8 }, (_, v) => encoded(a + 1, v)));
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  const db0 = databaseCpu(pgdir);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(pools.map((pool, a) => session(backends[a % servers]!, a + 1, perAgency, pool)));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // Read before closing: the backends' CPU leaves /proc with them.
  const dbCpu = cpuDelta(db0, databaseCpu(pgdir));
  clearInterval(sampler);
  await Promise.all(backends.map((b) => b.close()));
  const stored = perAgency * BATCH * AGENCIES;
  const cols = [
    `${servers}x${inFlight}x${groupBets}`,
    `${stored}`,
    `${seconds.toFixed(2)} s`,
    `${Math.round(stored / seconds).toLocaleString('en-US')} bets/s`,
    `node CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`,
    `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MB`,
    `database CPU ${dbCpu.toFixed(2)} s`,
  ];
  return cols.join(' | ');
}

if (args.url !== undefined) {
  // A child: one config against the parent's cluster, so that its peak RSS is its own.
  process.stdout.write(`${await runConfig(args.url, args.pgdir ?? '', configs[0]!)}\n`);
} else {
  const cluster = await PgCluster.start({ fast: args.fast });
  try {
    process.stdout.write(
      `pg-store: ${BETS} bets, ${AGENCIES} agencies, batches of ${BATCH}, windows of ${WINDOW}, fsync ${args.fast ? 'off' : 'on'}\n`,
    );
    process.stdout.write('config: servers x group commits in flight x bets per group; each in a fresh process\n');
    for (const [n, c] of configs.entries()) {
      const url = await cluster.createDatabase(`bench_${n}`);
      const spec = `${c.servers}x${c.inFlight}x${c.groupBets}`;
      const argv = [
        process.argv[1]!,
        '--url',
        url,
        '--pgdir',
        cluster.dir,
        '--configs',
        spec,
        '--bets',
        args.bets,
        '--agencies',
        args.agencies,
        '--batch',
        args.batch,
        '--window',
        args.window,
      ];
      const { stdout } = await run(process.execPath, argv, { encoding: 'utf8' });
      process.stdout.write(`${stdout.trim()}\n`);
    }
  } finally {
    await cluster.stop();
  }
}
