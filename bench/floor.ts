/**
 * The floor: the same CSV bytes over the same number of loopback connections into one file,
 * by a trivial Node sink and Node senders, process start-up included. Senders mirror the
 * scenario's processes: one per agency, or one for every agency (the many-connections
 * scenario, whose load client is one process too).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DataSet } from './data.js';
import { freePort } from '../shared/util/net.js';
import { now, spawnChild, type Child } from './procs.js';

export interface FloorResult {
  valid: boolean;
  problems: string[];
  wallMs: number;
  transferMs: number;
  bytes: number;
  senders: number;
}

interface SinkReport {
  firstConnAt: number;
  lastByteAt: number;
  doneAt: number;
  bytes: number;
  connections: number;
}

export async function runFloor(
  data: DataSet,
  workDir: string,
  oneProcess: boolean,
  timeoutMs: number,
  repoRoot: string,
): Promise<FloorResult> {
  const dir = mkdtempSync(join(workDir, 'floor-'));
  try {
    const port = await freePort();
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    const out = join(dir, 'floor.out');
    const t0 = now();
    const sink = spawnChild({
      name: 'floor-sink',
      args: ['dist/bench/floor-sink.js', String(port), out, String(data.files.length)],
      env,
      cwd: repoRoot,
      logFile: join(dir, 'sink.log'),
      timeoutMs,
      pollMs: 1000,
    });
    const groups = oneProcess ? [data.files] : data.files.map((f) => [f]);
    const senders: Child[] = groups.map((files, i) =>
      spawnChild({
        name: `floor-sender-${i + 1}`,
        args: ['dist/bench/floor-sender.js', String(port), ...files.map((f) => f.path)],
        env,
        cwd: repoRoot,
        logFile: join(dir, `sender-${i + 1}.log`),
        timeoutMs,
        pollMs: 1000,
      }),
    );
    const exits = await Promise.all([sink, ...senders].map((c) => c.exited));
    const problems: string[] = [];
    exits.forEach((e, i) => {
      if (e.code !== 0) problems.push(`${i === 0 ? 'sink' : 'sender'} exited with ${e.code ?? e.signal}${e.timedOut ? ' (timeout)' : ''}`);
    });
    let report: SinkReport | null = null;
    try {
      report = JSON.parse(
        readFileSync(join(dir, 'sink.log'), 'utf8')
          .split('\n')
          .find((l) => l.includes('doneAt')) ?? '',
      ) as SinkReport;
    } catch {
      problems.push('the sink printed no report');
    }
    const written = statSync(out, { throwIfNoEntry: false })?.size ?? 0;
    if (written !== data.bytes) problems.push(`sink wrote ${written} bytes of ${data.bytes}`);
    return {
      valid: problems.length === 0,
      problems,
      wallMs: Math.max(...exits.map((e) => e.at)) - t0,
      transferMs: report === null ? NaN : report.lastByteAt - report.firstConnAt,
      bytes: written,
      senders: senders.length,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
