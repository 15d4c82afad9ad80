/**
 * The targets of issue 12 (the client's CPU): judged on this run's summaries, its start-up
 * figures, and (for "×the commit before" and "nothing slower") a baseline: the JSON of a run
 * of the same scenarios on the commit before, made in the same session (`--baseline FILE`).
 */
import { type ScenarioSummary, type Target, fmt } from './report.js';
import type { StartupResult } from './startup.js';

/** The figures of a baseline run that the targets compare with (medians). */
export interface Baseline {
  commit: string;
  date: string;
  scenarios: Array<{
    id: string;
    valid: boolean;
    betsPerS: { median: number } | null;
    loadClientBetsPerS: { median: number } | null;
    clientRssMb: { median: number; max: number } | null;
    drawMs: { median: number } | null;
    wallMs: { median: number } | null;
    wallVsFloor: number | null;
  }>;
}

/** Slower than the baseline by less than this counts as "not slower": the machine's noise. */
export const NOISE = 0.05;

const n0 = (v: number): string => Math.round(v).toLocaleString('en-US');

/** Client CPU per bet beyond start-up, in µs: all clients' CPU less one start-up each, over the bets. */
export function cpuPerBetUs(s: ScenarioSummary, startupCpuMs: number): number | null {
  const cpu = s.clientsCpuS?.median;
  if (cpu === undefined) return null;
  return ((cpu - (s.agencies * startupCpuMs) / 1000) / s.bets) * 1e6;
}

export function fastClientTargets(s: ScenarioSummary[], startup: StartupResult | null, baseline: Baseline | null): Target[] {
  const by = (id: string): ScenarioSummary | undefined => s.find((v) => v.id === id && v.valid);
  const before = (id: string): Baseline['scenarios'][number] | undefined => baseline?.scenarios.find((v) => v.id === id && v.valid);
  const out: Target[] = [];
  const course = by('course');
  const scale = by('scale');
  if (course?.wallVsFloor != null) {
    out.push({
      id: 'course-2x',
      text: 'course run ≤ 2× the floor (median of the repeats)',
      measured: `${course.wallVsFloor.toFixed(2)}×`,
      met: course.wallVsFloor <= 2,
    });
  }
  // The mean: each run's CPU is a difference of counters in 10 ms ticks, which a median rounds
  // to a tick and the mean of many runs does not.
  const cpu = startup?.clientCpuMs;
  if (cpu != null) {
    const startupMs = cpu.mean;
    out.push({
      id: 'client-startup',
      text: 'client start-up ≤ 50 ms CPU (one-bet run, mean)',
      measured: `${startupMs.toFixed(1)} ms (n ${cpu.n}, median ${cpu.median.toFixed(0)})`,
      met: startupMs <= 50,
    });
    const perBet = [course, scale].flatMap((v) => {
      const us = v === undefined ? null : cpuPerBetUs(v, startupMs);
      return v === undefined || us === null ? [] : [{ id: v.id, us }];
    });
    if (perBet.length > 0) {
      out.push({
        id: 'client-cpu-per-bet',
        text: 'client CPU per bet beyond start-up ≤ 3 µs',
        measured: perBet.map((p) => `${p.id}: ${p.us.toFixed(2)} µs`).join('; '),
        met: perBet.every((p) => p.us <= 3),
      });
    }
  }
  if (baseline === null) return out;
  const tag = `before = ${baseline.commit}`;
  const old = before('scale');
  if (scale?.betsPerS && old?.betsPerS) {
    const r = scale.betsPerS.median / old.betsPerS.median;
    out.push({
      id: 'scale-3x',
      text: `1M bets from 100 real clients ≥ 3× the rate before (${tag})`,
      measured: `${n0(scale.betsPerS.median)} against ${n0(old.betsPerS.median)} bets/s: ${r.toFixed(2)}×`,
      met: r >= 3,
    });
  }
  const oldProbe = old?.loadClientBetsPerS?.median;
  if (scale?.loadClientBetsPerS && oldProbe !== undefined) {
    const r = scale.loadClientBetsPerS.median / oldProbe;
    out.push({
      id: 'server-rate',
      text: `not slower: 1M-bet load-client server rate (${tag}, ${NOISE * 100} % noise allowed)`,
      measured: `${fmt(scale.loadClientBetsPerS)} against ${n0(oldProbe)} bets/s: ${r.toFixed(2)}×`,
      met: r >= 1 - NOISE,
    });
  }
  const big = by('big');
  if (big?.clientRssMb) {
    const was = before('big')?.clientRssMb?.max;
    out.push({
      id: 'big-rss',
      text: 'not worse: 5M-bet client RSS < 100 MB',
      measured: `${fmt(big.clientRssMb, 1)} MB${was === undefined ? '' : ` (before: ${was.toFixed(1)} MB at most)`}`,
      met: big.clientRssMb.max < 100,
    });
  }
  for (const id of ['course', 'scale', 'big']) {
    const now = by(id)?.drawMs?.median;
    const was = before(id)?.drawMs?.median;
    if (now === undefined || was === undefined) continue;
    out.push({
      id: `draw-${id}`,
      text: `not slower: the draw, ${id} (${tag}, ${NOISE * 100} % noise allowed)`,
      measured: `${n0(now)} against ${n0(was)} ms`,
      met: now <= was * (1 + NOISE),
    });
  }
  return out;
}
