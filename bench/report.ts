/** Summaries of the runs (median and min–max), ratios to the floor, the targets, and the stdout tables. */
import type { FloorResult } from './floor.js';
import type { ScenarioSpec } from './plan.js';
import type { RunResult } from './run.js';
import { spreadOf, type Spread } from './stats.js';

export interface DataInfo {
  name: string;
  source: string;
  agencies: number;
  bets: number;
  bytes: number;
}
export interface ScenarioOutcome {
  spec: ScenarioSpec;
  data: DataInfo;
  runs: RunResult[];
  probes: RunResult[];
}
export interface FloorOutcome {
  key: string;
  data: DataInfo;
  runs: FloorResult[];
}

export interface FloorSummary {
  key: string;
  senders: number;
  bytes: number;
  valid: boolean;
  wallMs: Spread | null;
  transferMs: Spread | null;
}

export interface ScenarioSummary {
  id: string;
  title: string;
  group: string;
  client: string;
  workers: number;
  maxAmount: number;
  agencies: number;
  bets: number;
  valid: boolean;
  runs: number;
  invalidRuns: number;
  problems: string[];
  wallMs: Spread | null;
  ingestMs: Spread | null;
  betsPerS: Spread | null;
  wallVsFloor: number | null;
  ingestVsTransfer: number | null;
  latencyP50Ms: Spread | null;
  latencyP99Ms: Spread | null;
  latencySource: string;
  loadClientBetsPerS: Spread | null;
  loadClientIngestMs: Spread | null;
  serverRssMb: Spread | null;
  clientRssMb: Spread | null;
  /** Servers sharing the database (1 for the file backend). */
  servers: number;
  /** CPU seconds of the PostgreSQL cluster; null for the file backend. */
  dbCpuS: Spread | null;
  serverMainCpuS: Spread | null;
  serverOtherCpuS: Spread | null;
  clientsCpuS: Spread | null;
  serverListenMs: Spread | null;
  clientStartMs: Spread | null;
  drawMs: Spread | null;
  serverLogBytes: number;
  clientLogBytes: number;
  connectRetries: number;
  /** 1-minute load average at the start of the runs: the shared machine's other work. */
  loadavg: Spread | null;
}

export interface Target {
  id: string;
  text: string;
  measured: string;
  met: boolean | null;
}

export function summarizeFloor(f: FloorOutcome): FloorSummary {
  const ok = f.runs.filter((r) => r.valid);
  return {
    key: f.key,
    senders: f.runs[0]?.senders ?? 0,
    bytes: f.data.bytes,
    valid: ok.length === f.runs.length,
    wallMs: spreadOf(ok, (r) => r.wallMs),
    transferMs: spreadOf(ok, (r) => r.transferMs),
  };
}

const ratio = (a: Spread | null, b: Spread | null): number | null =>
  a === null || b === null || b.median <= 0 ? null : Math.round((100 * a.median) / b.median) / 100;

export function summarizeScenario(o: ScenarioOutcome, floor: FloorSummary | undefined): ScenarioSummary {
  const ok = o.runs.filter((r) => r.valid);
  const probes = o.probes.filter((r) => r.valid);
  const latencyRuns = o.spec.client === 'load' ? ok : probes;
  const wallMs = spreadOf(ok, (r) => r.wallMs);
  const ingestMs = spreadOf(ok, (r) => r.ingestMs);
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1] ?? 0;
  return {
    id: o.spec.id,
    title: o.spec.title,
    group: o.spec.group,
    client: o.spec.client,
    workers: o.runs[0]?.workers ?? o.spec.workers ?? -1,
    maxAmount: o.spec.maxAmount,
    agencies: o.data.agencies,
    bets: o.data.bets,
    valid: ok.length === o.runs.length && probes.length === o.probes.length && ok.length > 0,
    runs: o.runs.length,
    invalidRuns: o.runs.length - ok.length + o.probes.length - probes.length,
    problems: [...new Set([...o.runs, ...o.probes].flatMap((r) => r.problems))].slice(0, 5),
    wallMs,
    ingestMs,
    betsPerS: spreadOf(ok, (r) => r.betsPerS),
    wallVsFloor: ratio(wallMs, floor?.wallMs ?? null),
    ingestVsTransfer: ratio(ingestMs, floor?.transferMs ?? null),
    latencyP50Ms: spreadOf(latencyRuns, (r) => r.latencyMs?.p50),
    latencyP99Ms: spreadOf(latencyRuns, (r) => r.latencyMs?.p99),
    latencySource:
      o.spec.client === 'load'
        ? 'the runs themselves (bench load client)'
        : latencyRuns.length > 0
          ? `${latencyRuns.length} bench load-client run(s) of the same configuration`
          : 'not measured',
    loadClientBetsPerS: spreadOf(probes, (r) => r.betsPerS),
    loadClientIngestMs: spreadOf(probes, (r) => r.ingestMs),
    serverRssMb: spreadOf(ok, (r) => r.serverPeakRssMb),
    clientRssMb: spreadOf(ok, (r) => r.clientPeakRssMb),
    servers: o.runs[0]?.servers ?? 1,
    dbCpuS: spreadOf(ok, (r) => r.dbCpuS ?? undefined),
    serverMainCpuS: spreadOf(ok, (r) => r.serverCpu.mainS),
    serverOtherCpuS: spreadOf(ok, (r) => r.serverCpu.totalS - r.serverCpu.mainS),
    clientsCpuS: spreadOf(ok, (r) => r.clientsCpuS),
    serverListenMs: spreadOf(ok, (r) => r.serverListenMs),
    clientStartMs: spreadOf(ok, (r) => r.clientStartMs),
    drawMs: spreadOf(ok, (r) => r.drawMs),
    serverLogBytes: median(ok.map((r) => r.serverLogBytes)),
    clientLogBytes: median(ok.map((r) => r.clientLogBytes)),
    connectRetries: Math.max(0, ...o.runs.map((r) => r.connectRetries)),
    loadavg: spreadOf([...o.runs, ...o.probes], (r) => r.loadavg),
  };
}

const n0 = (v: number): string => Math.round(v).toLocaleString('en-US');
export function fmt(s: Spread | null, digits = 0, scale = 1): string {
  if (s === null) return 'n/a';
  const f = (v: number): string => (digits === 0 ? n0(v * scale) : (v * scale).toFixed(digits));
  return s.n > 1 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median);
}
const x = (v: number | null): string => (v === null ? 'n/a' : `${v.toFixed(2)}×`);

export function targets(s: ScenarioSummary[]): Target[] {
  const by = (id: string): ScenarioSummary | undefined => s.find((v) => v.id === id && v.valid);
  const out: Target[] = [];
  const course = by('course');
  if (course !== undefined) {
    out.push({
      id: 'course-wall',
      text: 'course size, end to end ≤ 1.6× the floor',
      measured: x(course.wallVsFloor),
      met: course.wallVsFloor === null ? null : course.wallVsFloor <= 1.6,
    });
    out.push({
      id: 'course-ingest',
      text: 'course size, ingest phase ≤ 3× the floor transfer',
      measured: x(course.ingestVsTransfer),
      met: course.ingestVsTransfer === null ? null : course.ingestVsTransfer <= 3,
    });
  }
  const scale = by('scale');
  if (scale !== undefined && scale.agencies === 100) {
    const bps = scale.betsPerS?.median ?? 0;
    const rss = scale.serverRssMb?.median ?? Infinity;
    out.push({
      id: 'scale-rate',
      text: '1M bets from 100 agencies: ≥ 1,000,000 bets/s stored',
      measured: `${n0(bps)} bets/s (load client: ${fmt(scale.loadClientBetsPerS)})`,
      met: bps >= 1_000_000,
    });
    out.push({
      id: 'scale-rss',
      text: '1M bets from 100 agencies: server RSS < 150 MB',
      measured: `${fmt(scale.serverRssMb, 1)} MB`,
      met: rss < 150,
    });
  }
  const big = by('big');
  if (big !== undefined) {
    out.push({
      id: 'big-rss',
      text: '5M-bet file: client RSS < 100 MB',
      measured: `${fmt(big.clientRssMb, 1)} MB`,
      met: (big.clientRssMb?.max ?? Infinity) < 100,
    });
    if (scale !== undefined && scale.agencies === 100) {
      const r = ratio(big.wallMs, scale.wallMs);
      out.push({
        id: 'big-time',
        text: '5M-bet file: ≤ 1.3 × 5 × the wall of 1M bets (scenario 2, 100 processes)',
        measured: r === null ? 'n/a' : `${(r / 5).toFixed(2)} × (5 × scenario 2)`,
        met: r === null ? null : r / 5 <= 1.3,
      });
    }
  }
  for (const data of ['course', 'scale']) {
    const sweep = s.filter((v) => v.group === 'workers' && v.id.startsWith(`workers-${data}-`) && v.valid);
    const inline = sweep.find((v) => v.workers === 0);
    if (inline === undefined || sweep.length < 2) continue;
    // Judged on the load client's rate (the server is the bottleneck there); real clients' wall shown too.
    const rate = (v: ScenarioSummary): number => v.loadClientBetsPerS?.median ?? v.betsPerS?.median ?? 0;
    const slower = sweep.filter((v) => v.workers > 0 && rate(v) < rate(inline));
    out.push({
      id: `pool-${data}`,
      text: `worker pool never slower than inline (${data}; judged on load-client bets/s)`,
      measured: sweep.map((v) => `w=${v.workers}: ${n0(rate(v))} bets/s, real wall ${n0(v.wallMs?.median ?? NaN)} ms`).join('; '),
      met: slower.length === 0,
    });
  }
  return out;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function renderTables(s: ScenarioSummary[], floors: FloorSummary[], t: Target[]): string {
  const name = (v: ScenarioSummary): string => `${v.id}${v.valid ? '' : ' INVALID'}`;
  const timing = table(
    ['scenario', 'wall ms', '×floor', 'ingest ms', '×transfer', 'bets/s', 'bets/s load-client', 'ack p50 ms', 'ack p99 ms'],
    s.map((v) => [
      name(v),
      fmt(v.wallMs),
      x(v.wallVsFloor),
      fmt(v.ingestMs),
      x(v.ingestVsTransfer),
      fmt(v.betsPerS),
      fmt(v.loadClientBetsPerS),
      fmt(v.latencyP50Ms, 1),
      fmt(v.latencyP99Ms, 1),
    ]),
  );
  const resources = table(
    [
      'scenario',
      'workers',
      'servers',
      'srv RSS MB',
      'client RSS MB',
      'srv main CPU s',
      'srv other thr CPU s',
      'clients CPU s',
      'db CPU s',
      'listen ms',
      'client log-1st ms',
      'srv log KB',
      'retries',
      'loadavg',
    ],
    s.map((v) => [
      name(v),
      String(v.workers),
      String(v.servers),
      fmt(v.serverRssMb, 1),
      fmt(v.clientRssMb, 1),
      fmt(v.serverMainCpuS, 2),
      fmt(v.serverOtherCpuS, 2),
      fmt(v.clientsCpuS, 2),
      fmt(v.dbCpuS, 2),
      fmt(v.serverListenMs),
      fmt(v.clientStartMs),
      n0(v.serverLogBytes / 1024),
      String(v.connectRetries),
      fmt(v.loadavg, 1),
    ]),
  );
  const floorTable = table(
    ['floor (data set)', 'senders', 'MB', 'wall ms', 'transfer ms'],
    floors.map((f) => [
      `${f.key}${f.valid ? '' : ' INVALID'}`,
      String(f.senders),
      (f.bytes / 1e6).toFixed(1),
      fmt(f.wallMs),
      fmt(f.transferMs),
    ]),
  );
  const targetTable = table(
    ['target', 'measured', 'met'],
    t.map((v) => [v.text, v.measured, v.met === null ? 'n/a' : v.met ? 'yes' : 'NO']),
  );
  const problems = s.filter((v) => v.problems.length > 0).map((v) => `  ${v.id}: ${v.problems.join('; ')}`);
  return [floorTable, timing, resources, targetTable, ...(problems.length > 0 ? ['problems:', ...problems] : [])].join('\n\n');
}
