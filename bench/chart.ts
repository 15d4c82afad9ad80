/**
 * The results as one SVG (no dependencies): throughput and memory against load, and the
 * worker and batch-size sweeps. Bars are medians, whiskers min–max.
 */
import type { FloorSummary, ScenarioSummary } from './report.js';
import type { Spread } from './stats.js';

interface Series {
  name: string;
  color: string;
  values: Array<Spread | null>;
  dashed?: boolean;
}
interface Panel {
  title: string;
  unit: string;
  labels: string[];
  series: Series[];
  kind: 'bars' | 'lines';
  log?: boolean;
  refs?: Array<{ value: number; label: string }>;
}

const W = 460;
const H = 300;
const PAD = { l: 64, r: 12, t: 34, b: 84 };
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const short = (v: number): string =>
  v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${Math.round(v / 1e3)}k` : `${Math.round(v * 10) / 10}`;

function panel(p: Panel, ox: number, oy: number): string {
  const pw = W - PAD.l - PAD.r;
  const ph = H - PAD.t - PAD.b;
  const all = p.series
    .flatMap((s) => s.values.flatMap((v) => (v === null ? [] : [v.min, v.max])))
    .concat((p.refs ?? []).map((r) => r.value));
  const max = p.log === true ? 10 ** Math.ceil(Math.log10(Math.max(10, ...all))) : niceMax(Math.max(...all));
  const low = p.log === true ? 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...all.filter((v) => v > 0))))) : 0;
  const frac = (v: number): number =>
    p.log === true ? (Math.log10(Math.max(v, low)) - Math.log10(low)) / (Math.log10(max) - Math.log10(low)) : v / max;
  const y = (v: number): number => Math.round(10 * (oy + PAD.t + ph - frac(v) * ph)) / 10;
  const out: string[] = [`<text x="${ox + W / 2}" y="${oy + 18}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`];
  const ticks =
    p.log === true
      ? Array.from({ length: Math.round(Math.log10(max / low)) + 1 }, (_, i) => low * 10 ** i)
      : [0, 1, 2, 3, 4].map((i) => (max * i) / 4);
  for (const v of ticks) {
    out.push(
      `<line x1="${ox + PAD.l}" x2="${ox + W - PAD.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${ox + PAD.l - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${short(v)}</text>`,
    );
  }
  out.push(
    `<text x="${ox + 14}" y="${oy + PAD.t + ph / 2}" font-size="11" transform="rotate(-90 ${ox + 14} ${oy + PAD.t + ph / 2})" text-anchor="middle">${esc(p.unit)}</text>`,
  );
  const slot = pw / Math.max(1, p.labels.length);
  p.labels.forEach((label, i) => {
    const cx = ox + PAD.l + slot * (i + 0.5);
    label.split('\n').forEach((part, j) => {
      out.push(`<text x="${cx}" y="${oy + H - PAD.b + 16 + 13 * j}" text-anchor="middle" font-size="11">${esc(part)}</text>`);
    });
  });
  const bw = Math.round((10 * slot * 0.8) / Math.max(1, p.series.length)) / 10;
  let legendX = ox + 8;
  let legendY = oy + H - 28;
  p.series.forEach((s, si) => {
    const pts: string[] = [];
    s.values.forEach((v, i) => {
      if (v === null) return;
      const cx =
        Math.round(10 * (p.kind === 'bars' ? ox + PAD.l + slot * i + slot * 0.1 + bw * (si + 0.5) : ox + PAD.l + slot * (i + 0.5))) / 10;
      if (p.kind === 'bars')
        out.push(
          `<rect x="${cx - bw / 2 + 1}" y="${y(v.median)}" width="${bw - 2}" height="${Math.round(10 * (y(low) - y(v.median))) / 10}" fill="${s.color}"><title>${esc(`${s.name}: ${short(v.median)}`)}</title></rect>`,
        );
      else pts.push(`${cx},${y(v.median)}`);
      out.push(`<line x1="${cx}" x2="${cx}" y1="${y(v.min)}" y2="${y(v.max)}" stroke="#333"/>`);
      if (p.kind === 'lines') out.push(`<circle cx="${cx}" cy="${y(v.median)}" r="3" fill="${s.color}"/>`);
    });
    if (pts.length > 1)
      out.push(
        `<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="5 3"' : ''}/>`,
      );
    const text = `${s.name}${s.dashed === true ? ' (dashed)' : ''}`;
    const width = 22 + 5.5 * text.length;
    if (legendX + width > ox + W && legendX > ox + 8) {
      legendX = ox + 8;
      legendY += 14;
    }
    out.push(
      `<rect x="${legendX}" y="${legendY - 9}" width="10" height="10" fill="${s.color}"/>`,
      `<text x="${legendX + 13}" y="${legendY}" font-size="10">${esc(text)}</text>`,
    );
    legendX += width;
  });
  for (const r of p.refs ?? []) {
    out.push(
      `<line x1="${ox + PAD.l}" x2="${ox + W - PAD.r}" y1="${y(r.value)}" y2="${y(r.value)}" stroke="#c00" stroke-dasharray="4 3"/>`,
      `<text x="${ox + W - PAD.r - 2}" y="${y(r.value) - 3}" text-anchor="end" font-size="10" fill="#c00">${esc(r.label)}</text>`,
    );
  }
  return out.join('\n');
}

/** Throughput a floor run reaches, in the scenario's bets per second of transfer (its mean: the rate of the mean time). */
function floorRate(s: ScenarioSummary, floors: FloorSummary[], key: string): Spread | null {
  const f = floors.find((v) => v.key === key)?.transferMs;
  if (f === undefined || f === null) return null;
  const rate = (ms: number): number => s.bets / (ms / 1000);
  return { median: rate(f.median), mean: rate(f.mean), min: rate(f.max), max: rate(f.min), n: f.n };
}

export function renderChart(s: ScenarioSummary[], floors: FloorSummary[], floorKeyOf: (id: string) => string, caption: string): string {
  const heads = ['course', 'scale', 'many', 'big']
    .map((id) => s.find((v) => v.id === id))
    .filter((v): v is ScenarioSummary => v !== undefined);
  const loadLabel = (v: ScenarioSummary): string => `${v.id}\n${short(v.bets)} / ${v.agencies} conn`;
  const panels: Panel[] = [
    {
      title: 'Stored bets/s against load (log scale)',
      unit: 'bets/s (ingest phase)',
      kind: 'bars',
      log: true,
      labels: heads.map(loadLabel),
      series: [
        { name: 'real clients', color: '#3b6ea5', values: heads.map((v) => (v.client === 'real' ? v.betsPerS : null)) },
        {
          name: 'bench load client',
          color: '#e39b2d',
          values: heads.map((v) => (v.client === 'load' ? v.betsPerS : v.loadClientBetsPerS)),
        },
        { name: 'floor (same bytes, raw TCP)', color: '#9a9a9a', values: heads.map((v) => floorRate(v, floors, floorKeyOf(v.id))) },
      ],
    },
    {
      title: 'Peak RSS against load',
      unit: 'MB',
      kind: 'bars',
      labels: heads.map(loadLabel),
      series: [
        { name: 'server', color: '#3b6ea5', values: heads.map((v) => v.serverRssMb) },
        { name: 'largest client', color: '#6aa84f', values: heads.map((v) => v.clientRssMb) },
      ],
      refs: [
        { value: 150, label: 'server target 150 MB' },
        { value: 100, label: 'client target 100 MB' },
      ],
    },
  ];
  const sweep = (data: string): ScenarioSummary[] =>
    s.filter((v) => v.id.startsWith(`workers-${data}-`)).sort((a, b) => a.workers - b.workers);
  const wc = sweep('course');
  const ws = sweep('scale');
  if (wc.length > 0 || ws.length > 0) {
    const ref = wc.length >= ws.length ? wc : ws;
    panels.push({
      title: 'Worker sweep: stored bets/s (log scale)',
      unit: 'bets/s',
      kind: 'lines',
      log: true,
      labels: ref.map((v) => `workers=${v.workers}`),
      series: [
        { name: 'course, real clients', color: '#3b6ea5', values: wc.map((v) => v.betsPerS) },
        { name: 'course, load client', color: '#3b6ea5', dashed: true, values: wc.map((v) => v.loadClientBetsPerS) },
        { name: 'scale, real clients', color: '#cc4125', values: ws.map((v) => v.betsPerS) },
        { name: 'scale, load client', color: '#cc4125', dashed: true, values: ws.map((v) => v.loadClientBetsPerS) },
      ],
    });
  }
  const batch = [...s.filter((v) => v.group === 'batch'), ...s.filter((v) => v.id === 'course')].sort((a, b) => a.maxAmount - b.maxAmount);
  if (batch.length > 1) {
    panels.push({
      title: 'Batch size sweep, course size (log scale)',
      unit: 'bets/s',
      kind: 'lines',
      log: true,
      labels: batch.map((v) => `max ${v.maxAmount === 65535 ? '8 KiB' : v.maxAmount}`),
      series: [
        { name: 'real clients', color: '#3b6ea5', values: batch.map((v) => v.betsPerS) },
        { name: 'load client', color: '#e39b2d', dashed: true, values: batch.map((v) => v.loadClientBetsPerS) },
      ],
    });
  }
  const cols = 2;
  const rows = Math.ceil(panels.length / cols);
  const body = panels.map((p, i) => panel(p, (i % cols) * W, 20 + Math.floor(i / cols) * H)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${cols * W}" height="${rows * H + 40}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="8" y="14" font-size="11" fill="#555">${esc(caption)}</text>
${body}
</svg>
`;
}
