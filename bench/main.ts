/**
 * `npm run bench [-- --quick] [--repeats N] [--only GROUP,...] [--log-format text|json]
 *  [--no-startup] [--profile|--no-profile] [--out DIR]`, from the repo root after `npx tsc -p .`.
 * Runs the floor and the scenarios of docs/benchmarks.md, prints the tables, and writes
 * DIR/latest.json, DIR/latest.svg and dated copies (DIR defaults to bench/results); a quick or
 * partial run writes DIR/latest-<mode>.* instead, DIR defaulting to the git-ignored bench/results/quick.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { countArg, parseCli } from './cli.js';
import { renderChart } from './chart.js';
import { uniformData, type DataSet } from './data.js';
import { runFloor, type FloorResult } from './floor.js';
import { makePlan, type ScenarioSpec } from './plan.js';
import { profileRun, type ProfileResult } from './profile.js';
import {
  renderTables,
  summarizeFloor,
  summarizeScenario,
  targets,
  type DataInfo,
  type FloorOutcome,
  type ScenarioOutcome,
} from './report.js';
import { canPin } from './procs.js';
import { type Baseline, fastClientTargets } from './targets.js';
import { ClientKind, LogFormat, runOnce, type RunResult } from './run.js';
import { measureStartup, type StartupResult } from './startup.js';

const USAGE = `usage: npm run bench [-- --quick] [--repeats N] [--only GROUP,...] [--log-format text|json] [--no-startup] [--profile|--no-profile] [--out DIR] [--baseline FILE]
  groups: course, scale, many, big, workers, pinned, batch, fsync, startup, profile (or a scenario id such as workers-scale-0);
  storage (only on request: file vs PostgreSQL with 1 and 2 servers; needs PostgreSQL's binaries);
  without --only: start-up, every scenario, and (full mode) the profile;
  --baseline: the JSON of a run of the same scenarios on an earlier commit, for the targets that compare with it`;

const { values: args } = parseCli('bench', USAGE, {
  options: {
    quick: { type: 'boolean' },
    repeats: { type: 'string' },
    only: { type: 'string' },
    'log-format': { type: 'string' },
    'no-startup': { type: 'boolean' },
    profile: { type: 'boolean' },
    'no-profile': { type: 'boolean' },
    out: { type: 'string' },
    baseline: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (args.help === true) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const repoRoot = process.cwd();
if (!existsSync(join(repoRoot, 'dist/server/main.cjs')) || !existsSync(join(repoRoot, 'dist/bench/load-client.js'))) {
  process.stderr.write('bench: dist/ is missing or stale; run `npx tsc -p .` from the repo root first\n');
  process.exit(2);
}
const quick = args.quick === true;
const repeats = args.repeats === undefined ? undefined : countArg('bench', '--repeats', args.repeats, USAGE);
const logFormat = args['log-format'] === LogFormat.JSON ? LogFormat.JSON : LogFormat.TEXT;

const only = args.only?.split(',').map((s) => s.trim());
const doProfile =
  args.profile === true || (only?.includes('profile') ?? false) || (!quick && args['no-profile'] !== true && only === undefined);
const doStartup = args['no-startup'] !== true && (only === undefined || only.includes('startup'));
const pinnable = canPin();
const baseline: Baseline | null =
  args.baseline === undefined
    ? null
    : ((): Baseline => {
        const b = JSON.parse(readFileSync(args.baseline, 'utf8')) as {
          meta: { commit: string; date: string };
          scenarios: Baseline['scenarios'];
        };
        return { commit: b.meta.commit, date: b.meta.date, scenarios: b.scenarios };
      })();
const plan = makePlan({ quick, repeats, only, canPin: pinnable });
// Only a full run replaces the tracked bench/results/latest.* (the chart in docs/benchmarks.md):
// a quick or partial run goes to the git-ignored bench/results/quick/, named latest-<mode>.*.
const fullRun = !quick && only === undefined;
const outDir = args.out ?? join(repoRoot, fullRun ? 'bench/results' : 'bench/results/quick');
const say = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

const info = (d: DataSet): DataInfo => ({ name: d.name, source: d.source, agencies: d.files.length, bets: d.bets, bytes: d.bytes });
const brief = (r: RunResult): string =>
  `${r.valid ? '' : 'INVALID '}wall ${Math.round(r.wallMs)} ms, ingest ${r.ingestMs} ms, ${Math.round(r.betsPerS)} bets/s` +
  `${r.latencyMs === null ? '' : `, ack p50/p99 ${r.latencyMs.p50.toFixed(1)}/${r.latencyMs.p99.toFixed(1)} ms`}${r.valid ? '' : ` (${r.problems.join('; ')})`}`;

async function runScenario(spec: ScenarioSpec, data: DataSet, workDir: string, client: ClientKind): Promise<RunResult> {
  return runOnce({
    data,
    workDir,
    client,
    workers: spec.workers,
    maxAmount: spec.maxAmount,
    timeoutMs: spec.timeoutMs,
    barrier: spec.barrier,
    backlog: spec.backlog,
    pinned: spec.pinned,
    fsync: spec.fsync,
    storage: spec.storage,
    servers: spec.servers,
    logFormat,
    repoRoot,
  });
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  const workDir = mkdtempSync(join(tmpdir(), 'loteria-bench-'));
  // Also on SIGINT/SIGTERM: killAllOnExit (tools/lib/processes.ts) exits the process, which skips the finally below.
  process.on('exit', () => rmSync(workDir, { recursive: true, force: true }));
  const distBefore = distStamp();
  const floors: FloorOutcome[] = [];
  const outcomes: ScenarioOutcome[] = [];
  let startup: StartupResult | null = null;
  let profile: ProfileResult | null = null;
  if (!pinnable && (only === undefined || only.includes('pinned')))
    say('taskset (util-linux) does not work here: the pinned scenarios are left out');
  try {
    if (doStartup) {
      say('start-up: node -e 0, server time to listen and to first ack, client time to connect, module counts');
      startup = await measureStartup(workDir, repeats ?? (quick ? 2 : 5), repoRoot);
    }
    for (const d of plan.data) {
      say(`data ${d.key}: preparing (generated files are cached in the OS temp dir)`);
      const data = await d.load(workDir);
      const specs = plan.scenarios.filter((s) => s.dataKey === d.key);
      const floor: FloorOutcome = { key: d.key, data: info(data), runs: [] };
      floors.push(floor);
      const mine = specs.map((spec) => ({ spec, data: info(data), runs: [] as RunResult[], probes: [] as RunResult[] }));
      outcomes.push(...mine);
      const rounds = Math.max(...specs.map((s) => s.repeats));
      for (let rep = 0; rep < rounds; rep++) {
        const f: FloorResult = await runFloor(data, workDir, d.floorOneProcess, 300_000, repoRoot);
        floor.runs.push(f);
        say(
          `${d.key} round ${rep + 1}/${rounds}: floor wall ${Math.round(f.wallMs)} ms, transfer ${Math.round(f.transferMs)} ms${f.valid ? '' : ` INVALID (${f.problems.join('; ')})`}`,
        );
        for (const o of mine) {
          if (rep >= o.spec.repeats) continue;
          const r = await runScenario(o.spec, data, workDir, o.spec.client);
          o.runs.push(r);
          say(`  ${o.spec.id} (${o.spec.client} clients): ${brief(r)}`);
          if (o.spec.probe && (!quick || rep === 0)) {
            const p = await runScenario(o.spec, data, workDir, ClientKind.LOAD);
            o.probes.push(p);
            say(`  ${o.spec.id} (bench load client): ${brief(p)}`);
          }
        }
      }
    }
    if (doProfile) {
      say('profile: 20 agencies x 10,000 bets, SERVER_WORKERS=0, server and one client under --cpu-prof');
      profile = await profileRun(await uniformData(20, 10_000), workDir, 150, logFormat, repoRoot);
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }

  const floorSummaries = floors.map(summarizeFloor);
  const floorKeyOf = (id: string): string => plan.scenarios.find((s) => s.id === id)?.dataKey ?? '';
  const summaries = outcomes.map((o) =>
    summarizeScenario(
      o,
      floorSummaries.find((f) => f.key === o.spec.dataKey),
    ),
  );
  const goals = [...targets(summaries), ...fastClientTargets(summaries, startup, baseline)];
  process.stdout.write(`\n${renderTables(summaries, floorSummaries, goals)}\n`);
  if (startup !== null) process.stdout.write(`\nstart-up (median ms): ${startupLine(startup)}\n`);
  if (profile !== null) {
    for (const p of profile.profiles) {
      process.stdout.write(
        `\nprofile ${p.who}, ${p.totalMs} ms sampled; by area: ${p.areas
          .slice(0, 8)
          .map((a) => `${a.name} ${a.pct}%`)
          .join(', ')}\n`,
      );
      process.stdout.write(
        `  native time by caller: ${p.callers
          .slice(0, 6)
          .map((a) => `${a.name} ${a.pct}%`)
          .join(', ')}\n`,
      );
    }
  }

  const meta = {
    date: started.toISOString(),
    mode: quick ? 'quick' : args.only === undefined ? 'full' : `only ${args.only}`,
    durationS: Math.round((Date.now() - started.getTime()) / 1000),
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    loadavgBefore: loadBefore,
    loadavgAfter: loadavg(),
    commit: process.env.BENCH_COMMIT ?? git(['rev-parse', '--short', 'HEAD']),
    dirtyFiles: git(['status', '--porcelain'])
      .split('\n')
      .filter((l) => l !== '').length,
    logFormat,
    batchDefault: 150,
    entryPoints: entryKind(),
    baseline: baseline === null ? null : { file: args.baseline, commit: baseline.commit, date: baseline.date },
    distChangedDuringRun: distStamp() !== distBefore,
  };
  if (meta.distChangedDuringRun) say('WARNING: dist/ was rebuilt during the run (another build or test run?): the figures mix two builds');
  const compactRuns = (runs: RunResult[]): unknown[] =>
    runs.map((r) => ({ ...r, serverCpu: { ...r.serverCpu, otherS: r.serverCpu.otherS.slice(0, 6) } }));
  const result = {
    meta,
    startup,
    floors: floorSummaries.map((f, i) => ({ ...f, data: floors[i]?.data, runs: floors[i]?.runs })),
    scenarios: summaries.map((s, i) => ({
      ...s,
      data: outcomes[i]?.data,
      runs: compactRuns(outcomes[i]?.runs ?? []),
      probes: compactRuns(outcomes[i]?.probes ?? []),
    })),
    targets: goals,
    profile,
  };
  mkdirSync(outDir, { recursive: true });
  const stamp = `${started.toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', '-')}-${meta.mode.replace(/[^a-z0-9-]+/gi, '-')}`;
  const json = `${compactJson(result)}\n`;
  const svg = renderChart(
    summaries,
    floorSummaries,
    floorKeyOf,
    `loteria bench ${meta.mode}, ${meta.date}, node ${meta.node}, ${meta.cpus}, commit ${meta.commit}; bars: median, whiskers: min–max`,
  );
  const latest = fullRun ? 'latest' : `latest-${meta.mode.replace(/[^a-z0-9-]+/gi, '-')}`;
  for (const name of [latest, stamp]) {
    writeFileSync(join(outDir, `${name}.json`), json);
    writeFileSync(join(outDir, `${name}.svg`), svg);
  }
  say(`wrote ${join(outDir, `${latest}.json`)} and ${latest}.svg (and ${stamp}.*) in ${meta.durationS} s`);
}

function startupLine(s: StartupResult): string {
  const m = (v: { median: number } | null): string => (v === null ? 'n/a' : String(Math.round(v.median)));
  const mean = (v: { mean: number } | null): string => (v === null ? 'n/a' : v.mean.toFixed(1));
  return (
    `node -e 0 ${m(s.nodeBareMs)} (CPU ${m(s.nodeBareCpuMs)}, mean ${mean(s.nodeBareCpuMs)}); server listen ${m(s.serverListenMs)} (inline ${m(s.serverListenInlineMs)}), ` +
    `first ack ${m(s.serverFirstAckMs)} (inline ${m(s.serverFirstAckInlineMs)}); client config ${m(s.clientConfigMs)}, ` +
    `connect ${m(s.clientConnectMs)}, exit ${m(s.clientExitMs)} (CPU ${m(s.clientCpuMs)}, mean ${mean(s.clientCpuMs)}); modules server ${s.serverModules?.total ?? '?'}, client ${s.clientModules?.total ?? '?'}`
  );
}

/** JSON with numbers rounded (1 decimal below 100, integers above), one line per value below depth 3. */
function compactJson(value: unknown): string {
  const round = (_k: string, v: unknown): unknown =>
    typeof v === 'number' && !Number.isInteger(v) ? (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 10) / 10) : v;
  const walk = (v: unknown, depth: number, pad: string): string => {
    if (depth >= 3 || v === null || typeof v !== 'object') return JSON.stringify(v, round) ?? 'null';
    const inner = `${pad} `;
    if (Array.isArray(v)) return v.length === 0 ? '[]' : `[\n${v.map((x) => inner + walk(x, depth + 1, inner)).join(',\n')}\n${pad}]`;
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${walk(round(k, x), depth + 1, inner)}`).join(',\n')}\n${pad}}`;
  };
  return walk(value, 0, '');
}

/** Modification times of the entry points: a rebuild mid-run (a test run's global setup) changes them. */
function distStamp(): string {
  return ['dist/server/cli.cjs', 'dist/server/pool/worker.cjs', 'dist/client/cli.cjs']
    .map((f) => (existsSync(join(repoRoot, f)) ? statSync(join(repoRoot, f)).mtimeMs : 0))
    .join(',');
}

/** Whether dist/ holds tools/bundle.ts's one-file entry points or tsc's module tree. */
function entryKind(): string {
  const text = readFileSync(join(repoRoot, 'dist/server/main.cjs'), 'utf8');
  return /import\(['"]\.\/cli\.js['"]\)/.test(text) ? 'tsc output (unbundled)' : 'bundled (tools/bundle.ts)';
}

function git(argv: string[]): string {
  try {
    return execFileSync('git', argv, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

await main();
