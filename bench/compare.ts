/**
 * `node dist/bench/compare.js --before DIR [--only course,scale,big] [--repeats N] [--out FILE]`,
 * from the repo root: the same scenarios on two built trees, interleaved run by run (floor,
 * before, after; floor, before, after...), so that the shared machine's drift hits both
 * alike. DIR is another checkout with its dist/ built (e.g. the commit before, in a snapshot).
 * Prints per scenario the medians of both and the median of the per-round after/before ratios.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { countArg, parseCli, usageExit } from './cli.js';
import { courseData, uniformData, type DataSet } from './data.js';
import { runFloor } from './floor.js';
import { entryPoint } from './procs.js';
import { ClientKind, LogFormat, runOnce, type RunResult } from './run.js';
import { spread } from './stats.js';

const USAGE =
  'usage: node dist/bench/compare.js --before DIR [--only course,scale,big] [--repeats N] [--out FILE]; DIR needs a built dist/';
const { values: args } = parseCli('compare', USAGE, {
  options: {
    before: { type: 'string' },
    only: { type: 'string' },
    repeats: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
});
if (args.help === true) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (args.before === undefined) usageExit('compare', '--before is required', USAGE);
if (!existsSync(join(args.before, entryPoint(args.before, 'client'))))
  usageExit('compare', `--before ${args.before}: no built client there (run \`npm run build\` in it)`, USAGE);
const before = resolve(args.before);
const after = process.cwd();
const groups = (args.only ?? 'course,scale')
  .split(',')
  .map((g) => g.trim())
  .filter((g) => g !== '');
const repeats = countArg('compare', '--repeats', args.repeats ?? '5', USAGE);

interface Case {
  id: string;
  load: (work: string) => Promise<DataSet>;
  timeoutMs: number;
}
const CASES: Case[] = [
  { id: 'course', load: (w) => courseData(w), timeoutMs: 120_000 },
  { id: 'scale', load: () => uniformData(100, 10_000), timeoutMs: 900_000 },
  { id: 'big', load: () => uniformData(1, 5_000_000), timeoutMs: 900_000 },
];
const unknown = groups.filter((g) => !CASES.some((c) => c.id === g));
if (unknown.length > 0 || groups.length === 0) {
  usageExit('compare', `--only ${JSON.stringify(args.only)}: name one or more of course, scale, big`, USAGE);
}

const say = (m: string): void => {
  process.stderr.write(`[compare ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};
const med = (xs: number[]): number => spread(xs)?.median ?? NaN;
const r1 = (v: number): string => (Number.isFinite(v) ? v.toFixed(v >= 100 ? 0 : 2) : 'n/a');

async function one(root: string, data: DataSet, work: string, timeoutMs: number): Promise<RunResult> {
  return runOnce({ data, workDir: work, client: ClientKind.REAL, maxAmount: 150, timeoutMs, logFormat: LogFormat.TEXT, repoRoot: root });
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'loteria-compare-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  const report: Record<string, unknown> = { date: new Date().toISOString(), before, after, repeats, loadavgBefore: loadavg() };
  const lines: string[] = [];
  for (const c of CASES.filter((x) => groups.includes(x.id))) {
    const data = await c.load(work);
    const rounds: Array<{ floor: number; before: RunResult; after: RunResult }> = [];
    for (let i = 0; i < repeats; i++) {
      const floor = await runFloor(data, work, false, c.timeoutMs, after);
      const b = await one(before, data, work, c.timeoutMs);
      const a = await one(after, data, work, c.timeoutMs);
      rounds.push({ floor: floor.wallMs, before: b, after: a });
      say(
        `${c.id} ${i + 1}/${repeats}: floor ${Math.round(floor.wallMs)} ms, before ${Math.round(b.wallMs)} ms${b.valid ? '' : ' INVALID'}, after ${Math.round(a.wallMs)} ms${a.valid ? '' : ' INVALID'}`,
      );
    }
    const ok = rounds.filter((r) => r.before.valid && r.after.valid);
    const pick = (f: (r: (typeof ok)[number]) => number): number => med(ok.map(f));
    const row = {
      id: c.id,
      validRounds: ok.length,
      floorWallMs: pick((r) => r.floor),
      wallMs: { before: pick((r) => r.before.wallMs), after: pick((r) => r.after.wallMs) },
      wallVsFloor: { before: pick((r) => r.before.wallMs / r.floor), after: pick((r) => r.after.wallMs / r.floor) },
      betsPerS: { before: pick((r) => r.before.betsPerS), after: pick((r) => r.after.betsPerS) },
      clientsCpuS: { before: pick((r) => r.before.clientsCpuS), after: pick((r) => r.after.clientsCpuS) },
      serverCpuS: { before: pick((r) => r.before.serverCpu.totalS), after: pick((r) => r.after.serverCpu.totalS) },
      clientRssMb: { before: pick((r) => r.before.clientPeakRssMb), after: pick((r) => r.after.clientPeakRssMb) },
      drawMs: { before: pick((r) => r.before.drawMs ?? NaN), after: pick((r) => r.after.drawMs ?? NaN) },
      afterOverBefore: { wall: pick((r) => r.after.wallMs / r.before.wallMs), betsPerS: pick((r) => r.after.betsPerS / r.before.betsPerS) },
      rounds: rounds.map((r) => ({ floor: r.floor, before: r.before, after: r.after })),
    };
    report[c.id] = row;
    lines.push(
      `${c.id} (${ok.length}/${repeats} valid rounds, floor ${r1(row.floorWallMs)} ms): wall ${r1(row.wallMs.before)} -> ${r1(row.wallMs.after)} ms ` +
        `(${r1(row.wallVsFloor.before)}x -> ${r1(row.wallVsFloor.after)}x the floor; after/before ${r1(row.afterOverBefore.wall)}), ` +
        `bets/s ${r1(row.betsPerS.before)} -> ${r1(row.betsPerS.after)} (x${r1(row.afterOverBefore.betsPerS)}), ` +
        `clients CPU ${r1(row.clientsCpuS.before)} -> ${r1(row.clientsCpuS.after)} s, server CPU ${r1(row.serverCpuS.before)} -> ${r1(row.serverCpuS.after)} s, ` +
        `client RSS ${r1(row.clientRssMb.before)} -> ${r1(row.clientRssMb.after)} MB, draw ${r1(row.drawMs.before)} -> ${r1(row.drawMs.after)} ms`,
    );
  }
  report.loadavgAfter = loadavg();
  process.stdout.write(`${lines.join('\n')}\n`);
  if (args.out !== undefined) writeFileSync(args.out, `${JSON.stringify(report, null, 1)}\n`);
}

await main();
