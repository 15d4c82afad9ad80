/**
 * One measured run of the real server (node dist/server/main.cjs) on 127.0.0.1 with either
 * the real agency clients (one node dist/client/main.cjs per agency) or the bench's load
 * client (every agency in one process, timestamps each batch's acknowledgement).
 * Figures come from wall-clock times taken here, the server's JSON log lines, /proc, and
 * the stored bets.csv. The run's temp dir (logs, bets.csv) is removed afterwards.
 * With `storage: 'postgres'` (issue 13) the run gets a throwaway cluster of its own (fsync on,
 * as the file backend's SERVER_FSYNC default) and `servers` servers sharing its database,
 * agency a on server ((a-1) mod servers); bets are counted in the database, and the
 * database's CPU is read from /proc before the servers disconnect.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseLogLine } from '../shared/logging/parse.js';
import { SEND_WINDOW } from '../shared/protocol/messages.js';
import { countRows, type DataSet } from './data.js';
import { Database } from './database.js';
import type { LoadConfig, LoadReport } from './load-client.js';
import { freePort } from '../shared/util/net.js';
import { clientArgs } from '../tools/lib/processes.js';
import {
  cpuDelta,
  entryPoint,
  now,
  readThreadsCpu,
  reapedChildrenCpuS,
  spawnChild,
  stopChild,
  type Child,
  type ExitInfo,
} from './procs.js';
import { spread } from './stats.js';

/** CPUs of a pinned run (RunOptions.pinned). */
export const SERVER_CPU = '1';
export const CLIENT_CPU = '0';

export const ClientKind = { REAL: 'real', LOAD: 'load' } as const;
export type ClientKind = (typeof ClientKind)[keyof typeof ClientKind];

export interface RunOptions {
  data: DataSet;
  workDir: string;
  client: ClientKind;
  /** SERVER_WORKERS; undefined leaves the server's default (one per core). */
  workers?: number;
  maxAmount: number;
  timeoutMs: number;
  /** Load client only: connect every agency before any sends. */
  barrier?: boolean;
  backlog?: number;
  /** The server on CPU 1 and the clients on CPU 0 (`taskset`): the server has a core to itself. */
  pinned?: boolean;
  /** SERVER_FSYNC; undefined leaves the server's default (on). */
  fsync?: 'on' | 'off';
  /** SERVER_STORAGE; undefined: the file backend. */
  storage?: 'file' | 'postgres';
  /** Servers sharing the database (postgres only); default 1. */
  servers?: number;
  /** Extra node flags for the server (e.g. --cpu-prof). */
  serverFlags?: string[];
  /** Extra node flags for the first `profiledClients` real clients. */
  clientFlags?: string[];
  profiledClients?: number;
  /** LOG_FORMAT of server and real clients: text is the project's default. */
  logFormat: LogFormat;
  /** Where the server's working directory is (the repo root). */
  repoRoot: string;
}

export interface ServerCpu {
  mainS: number;
  otherS: number[];
  totalS: number;
}

export interface RunResult {
  client: ClientKind;
  /** 1-minute load average when the run started: how busy the shared machine was. */
  loadavg: number;
  valid: boolean;
  problems: string[];
  expected: number;
  stored: number;
  workers: number;
  wallMs: number;
  ingestMs: number;
  betsPerS: number;
  serverListenMs: number;
  firstConnMs: number;
  clientStartMs: number | null;
  drawMs: number | null;
  latencyMs: LoadReport['latencyMs'] | null;
  /** The largest server's peak RSS (with several servers, each one's). */
  serverPeakRssMb: number;
  clientPeakRssMb: number;
  servers: number;
  /** CPU seconds of the PostgreSQL cluster's processes during the run; null for the file backend. */
  dbCpuS: number | null;
  /** The largest client's VmRSS (MB) at a quarter, half, three quarters and the end of its life. */
  clientRssQuartersMb: number[];
  clientsCpuS: number;
  serverCpu: ServerCpu;
  serverLogLines: number;
  serverLogBytes: number;
  clientLogBytes: number;
  connectRetries: number;
  maxConcurrent: number | null;
}

export const LogFormat = { TEXT: 'text', JSON: 'json' } as const;
export type LogFormat = (typeof LogFormat)[keyof typeof LogFormat];

interface LogLine {
  time: number;
  action?: string;
  result?: string;
  [k: string]: unknown;
}

/**
 * Reads a log in either format. Text lines (`ISO LEVEL action: X | result: Y | k: v`) are
 * split the graders' way (shared/logging/parse.ts); numeric values come back as numbers.
 */
function readLog(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  const out: LogLine[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('{')) {
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        /* a partial last line */
      }
      continue;
    }
    const parsed = parseLogLine(line);
    const time = Date.parse(line.slice(0, 24));
    if (parsed === null || Number.isNaN(time)) continue;
    const entry: LogLine = { time, action: parsed.action, result: parsed.result };
    for (const [k, v] of Object.entries(parsed.fields))
      if (k !== 'action' && k !== 'result') entry[k] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
    out.push(entry);
  }
  return out;
}

const mb = (kb: number): number => Math.round(kb / 102.4) / 10;

function baseEnv(format: LogFormat): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, LOG_FORMAT: format };
}

function quarters(series: Array<[number, number]>): number[] {
  if (series.length === 0) return [];
  return [0.25, 0.5, 0.75, 1].map((q) => mb(series[Math.min(series.length - 1, Math.floor(q * (series.length - 1)))]?.[1] ?? 0));
}

export async function runOnce(o: RunOptions): Promise<RunResult> {
  const dir = mkdtempSync(join(o.workDir, 'run-'));
  const db = o.storage === 'postgres' ? await Database.start() : null;
  try {
    return await measure(o, dir, db);
  } finally {
    await db?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(o: RunOptions, dir: string, db: Database | null): Promise<RunResult> {
  const count = db === null ? 1 : (o.servers ?? 1);
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  const betsPath = join(dir, 'bets.csv');
  const serverEnv = (k: number): NodeJS.ProcessEnv => ({
    ...baseEnv(o.logFormat),
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: String(ports[k]),
    SERVER_AGENCIES: String(o.data.files.length),
    ...(db === null
      ? { SERVER_STORAGE_PATH: betsPath }
      : { SERVER_STORAGE: 'postgres', SERVER_DATABASE_URL: db.url, SERVER_ID: `bench-${k + 1}` }),
    LOGGING_LEVEL: 'INFO',
    // The load client has no keys; the handshake costs one HMAC per connection either way.
    SERVER_AUTH: 'off',
    // Every agency connects from 127.0.0.1 at once: the per-source limit of peers not yet
    // authenticated (16 by default, a defence against a flood) would answer the 17th ERROR
    // BUSY, which the load client does not retry. The bench measures throughput, not that limit.
    SERVER_MAX_UNAUTHENTICATED: String(Math.max(128, o.data.files.length)),
    SERVER_MAX_UNAUTHENTICATED_PER_SOURCE: String(Math.max(16, o.data.files.length)),
    SERVER_LISTEN_BACKLOG: String(o.backlog ?? 128),
    ...(o.workers === undefined ? {} : { SERVER_WORKERS: String(o.workers) }),
    ...(o.fsync === undefined ? {} : { SERVER_FSYNC: o.fsync }),
  });
  // Agency a's server is ((a-1) mod count); a real client lists the others after it.
  const portOf = (agency: number): number => ports[(agency - 1) % count]!;
  const addressOf = (agency: number): string => ports.map((_, k) => `127.0.0.1:${ports[(agency - 1 + k) % count]}`).join(',');
  const many = o.data.files.length > 20;
  const cpuBefore = reapedChildrenCpuS();
  const loadBefore = loadavg()[0] ?? NaN;
  const dbBefore = db?.cpu() ?? null;
  const t0 = now();
  const servers = ports.map((_, k) =>
    spawnChild({
      name: k === 0 ? 'server' : `server-${k + 1}`,
      args: [...(o.serverFlags ?? []), entryPoint(o.repoRoot, 'server')],
      env: serverEnv(k),
      cpus: o.pinned === true ? SERVER_CPU : undefined,
      cwd: o.repoRoot,
      logFile: join(dir, k === 0 ? 'server.log' : `server-${k + 1}.log`),
      timeoutMs: o.timeoutMs,
      pollMs: 50,
    }),
  );
  const clients: Child[] = [];
  if (o.client === ClientKind.REAL) {
    for (const [i, f] of o.data.files.entries()) {
      const flags = i < (o.profiledClients ?? 0) ? (o.clientFlags ?? []) : [];
      clients.push(
        spawnChild({
          name: `client-${f.agency}`,
          args: [...flags, ...clientArgs(o.repoRoot, entryPoint(o.repoRoot, 'client'))],
          cwd: o.repoRoot,
          cpus: o.pinned === true ? CLIENT_CPU : undefined,
          env: {
            ...baseEnv(o.logFormat),
            CLI_ID: String(f.agency),
            CLI_SERVER_ADDRESS: addressOf(f.agency),
            CLI_DATA_FILE: f.path,
            CLI_BATCH_MAXAMOUNT: String(o.maxAmount),
            CLI_LOG_LEVEL: 'INFO',
          },
          logFile: join(dir, `client-${f.agency}.log`),
          timeoutMs: o.timeoutMs,
          pollMs: many ? 250 : 100,
        }),
      );
    }
  } else {
    const cfg: LoadConfig = {
      host: '127.0.0.1',
      port: ports[0]!,
      agencies: o.data.files.map((f) => ({ agency: f.agency, file: f.path, port: portOf(f.agency) })),
      maxAmount: o.maxAmount,
      window: SEND_WINDOW,
      barrier: o.barrier ?? false,
      connectTimeoutMs: 60_000,
    };
    writeFileSync(join(dir, 'load.json'), JSON.stringify(cfg));
    clients.push(
      spawnChild({
        name: 'load-client',
        args: ['dist/bench/load-client.js', join(dir, 'load.json')],
        cwd: o.repoRoot,
        cpus: o.pinned === true ? CLIENT_CPU : undefined,
        env: baseEnv(o.logFormat),
        logFile: join(dir, 'load.out'),
        timeoutMs: o.timeoutMs,
        pollMs: 100,
      }),
    );
  }
  const exits: ExitInfo[] = await Promise.all(clients.map((c) => c.exited));
  const tEnd = Math.max(...exits.map((e) => e.at));
  const clientsCpuS = reapedChildrenCpuS() - cpuBefore;
  for (const server of servers) server.sample();
  const threads = servers.map((server) => readThreadsCpu(server.pid));
  // Before the servers stop: their backends end with their connections, and their CPU with them.
  const dbCpuS = db === null || dbBefore === null ? null : Math.round(cpuDelta(dbBefore, db.cpu()) * 100) / 100;
  const stored = db === null ? (existsSync(betsPath) ? countRows(betsPath) : 0) : await db.bets();
  const serverExits = await Promise.all(servers.map((server) => stopChild(server)));

  const problems: string[] = [];
  exits.forEach((e, i) => {
    if (e.timedOut) problems.push(`${clients[i]?.name} killed after ${o.timeoutMs} ms`);
    else if (e.code !== 0) problems.push(`${clients[i]?.name} exited with ${e.code ?? e.signal}`);
  });
  serverExits.forEach((e, k) => {
    if (e.timedOut) problems.push(`${servers[k]?.name} killed after ${o.timeoutMs} ms`);
  });

  const logFiles = servers.map((_, k) => join(dir, k === 0 ? 'server.log' : `server-${k + 1}.log`));
  const log = logFiles.flatMap((f) => readLog(f));
  const listen = log.find((l) => l.action === 'listen');
  const conns = log.filter((l) => l.action === 'conexion' && l.result === 'success');
  const acks = log.filter((l) => l.action === 'apuesta_recibida');
  const rejected = acks.filter((l) => l.result !== 'success').length;
  if (rejected > 0) problems.push(`${rejected} batches rejected`);
  const draw = log.find((l) => l.action === 'sorteo' && l.result === 'success');
  const firstConn = Math.min(...conns.map((l) => l.time));
  const lastAck = Math.max(...acks.map((l) => l.time));
  if (stored !== o.data.bets) problems.push(`stored ${stored} bets of ${o.data.bets}`);
  const ingestMs = lastAck - firstConn;

  let load: LoadReport | null = null;
  let clientStartMs: number | null = null;
  let connectRetries = 0;
  let clientLogBytes = 0;
  if (o.client === ClientKind.LOAD) {
    try {
      load = JSON.parse(readFileSync(join(dir, 'load.out'), 'utf8').split('\n')[0] ?? '') as LoadReport;
      connectRetries = load.connectRetries;
      for (const e of load.errors.slice(0, 3)) problems.push(e);
    } catch {
      problems.push('the load client printed no report');
    }
  } else {
    const starts: number[] = [];
    for (const f of o.data.files) {
      const path = join(dir, `client-${f.agency}.log`);
      clientLogBytes += existsSync(path) ? statSync(path).size : 0;
      const lines = readLog(path);
      const first = lines[0];
      if (first !== undefined) starts.push(first.time - t0);
      connectRetries += lines.filter((l) => l.action === 'connect' && l.result === 'in_progress').length;
    }
    clientStartMs = spread(starts)?.median ?? null;
  }
  // Each server's main thread, then every other thread of every server.
  const main = threads.reduce((sum, t) => sum + (t[0]?.cpuS ?? 0), 0);
  const other = threads
    .flatMap((t) => t.slice(1))
    .map((t) => t.cpuS)
    .filter((v) => v > 0)
    .sort((a, b) => b - a);
  return {
    client: o.client,
    loadavg: Math.round(loadBefore * 10) / 10,
    valid: problems.length === 0,
    problems,
    expected: o.data.bets,
    stored,
    workers: typeof listen?.workers === 'number' ? listen.workers : (o.workers ?? -1),
    wallMs: tEnd - t0,
    ingestMs,
    betsPerS: ingestMs > 0 ? stored / (ingestMs / 1000) : NaN,
    serverListenMs: listen === undefined ? NaN : listen.time - t0,
    firstConnMs: firstConn - t0,
    clientStartMs,
    drawMs: typeof draw?.duracion_ms === 'number' ? draw.duracion_ms : null,
    latencyMs: load?.latencyMs ?? null,
    serverPeakRssMb: mb(Math.max(...servers.map((server) => server.peakRssKb))),
    clientPeakRssMb: mb(Math.max(...clients.map((c) => c.peakRssKb))),
    clientRssQuartersMb: quarters(clients.reduce((a, c) => (c.peakRssKb > a.peakRssKb ? c : a)).rssSeries),
    clientsCpuS: Math.round(clientsCpuS * 100) / 100,
    serverCpu: { mainS: main, otherS: other, totalS: Math.round((main + other.reduce((s, v) => s + v, 0)) * 100) / 100 },
    serverLogLines: log.length,
    serverLogBytes: logFiles.reduce((n, f) => n + (existsSync(f) ? statSync(f).size : 0), 0),
    clientLogBytes,
    connectRetries,
    maxConcurrent: load?.maxConcurrent ?? null,
    servers: count,
    dbCpuS,
  };
}
