/**
 * Crash test: a child process storing through the real pool is SIGKILLed at random moments and
 * restarted on the same files. Whatever was acknowledged before a kill is there after it (the
 * recovered `next` of each agency covers its acks), and at the end every bet is in the file
 * exactly once, in its agency's order, and recovery finds file and journal consistent.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverDurableState } from '../server/storage/durable-state.js';
import { collectingLogger, numberedRow } from './helpers/durable.js';
import { ROOT, makeTempDir, removeDir } from './helpers/processes.js';

const WRITER = fileURLToPath(new URL('./fixtures/durable-writer.ts', import.meta.url));
const AGENCIES = 3;
const TARGET = 4_000;

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('durable-crash');
});
afterAll(async () => {
  await removeDir(dir);
});

interface Run {
  lines: string[];
  exit: { code: number | null; signal: NodeJS.Signals | null };
}

/**
 * Runs the writer; when `kill` is given, SIGKILLs it `kill.ms` after its `kill.acks`-th ack
 * (counting acks, not time from the first: a fast run could finish before a timer fired).
 */
function runWriter(env: Record<string, string>, kill: { acks: number; ms: number } | null): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let timer: NodeJS.Timeout | undefined;
  let acks = 0;
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    const parts = (partial + s).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) {
      lines.push(l);
      if (kill !== null && timer === undefined && l.startsWith('ack ') && ++acks === kill.acks)
        timer = setTimeout(() => child.kill('SIGKILL'), kill.ms);
    }
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 && signal === null) lines.push(`stderr: ${err}`);
      resolve({ lines, exit: { code, signal } });
    });
  });
}

describe.each([
  ['on', 6],
  ['off', 4],
])('SIGKILL while storing through the pool, SERVER_FSYNC=%s', (fsync, KILLS) => {
  it(`loses no acknowledged batch and stores none twice over ${KILLS} kills`, async () => {
    const bets = join(dir, `bets-${fsync}.csv`);
    const seed = Math.floor(Math.random() * 2 ** 31);
    const env = { BETS: bets, AGENCIES: String(AGENCIES), TARGET: String(TARGET), FSYNC: fsync };
    const acked = new Map<number, number>(); // agency -> end of its highest acknowledged batch
    let kills = 0;
    let cuts = 0;
    for (let round = 0; ; round++) {
      // A run stores about 200 batches: the first kill always lands mid-run, later ones may
      // land during the draw or after the end.
      const kill = round < KILLS ? { acks: 1 + Math.floor(Math.random() * 40), ms: Math.floor(Math.random() * 20) } : null;
      const run = await runWriter({ ...env, SEED: String(seed + round) }, kill);
      // Acknowledged before the kill ⇒ recovered after it.
      for (const line of run.lines.filter((l) => l.startsWith('state '))) {
        const [, a, next] = line.split(' ').map(Number);
        expect(next, `seed ${seed} round ${round}: agency ${a} recovered ${next}, acked up to ${acked.get(a!)}`).toBeGreaterThanOrEqual(
          acked.get(a!) ?? 0,
        );
      }
      if (run.lines.some((l) => l.startsWith('cut ') && l !== 'cut 0 0')) cuts++;
      for (const line of run.lines.filter((l) => l.startsWith('ack '))) {
        const [, a, first, count] = line.split(' ').map(Number);
        acked.set(a!, Math.max(acked.get(a!) ?? 0, first! + count!));
      }
      if (run.exit.signal === 'SIGKILL') {
        kills++;
        continue;
      }
      expect(run.exit, run.lines.join('\n')).toEqual({ code: 0, signal: null });
      if (run.lines.some((l) => l.startsWith('drawn '))) break;
      // Killed so late that it had already finished: run again to the draw.
      await sleep(0);
    }
    expect(kills).toBeGreaterThan(0);
    console.info(`fsync ${fsync}, seed ${seed}: ${kills} kills, ${cuts} restarts cut a torn or unrecorded tail`);
    // Every bet exactly once; each agency's rows in its order.
    const stored = readFileSync(bets, 'utf8').split('\r\n').slice(0, -1);
    const byAgency = new Map<number, string[]>();
    for (const row of stored) {
      const a = Number(row.slice(0, row.indexOf(',')));
      byAgency.set(a, [...(byAgency.get(a) ?? []), `${row}\r\n`]);
    }
    for (let a = 1; a <= AGENCIES; a++) {
      const expected = Array.from({ length: TARGET }, (_, i) => numberedRow(a, i));
      expect(byAgency.get(a)?.length, `agency ${a}`).toBe(TARGET);
      expect(byAgency.get(a)!.join('') === expected.join(''), `agency ${a}'s rows, in order, exactly once`).toBe(true);
    }
    expect(stored.length).toBe(AGENCIES * TARGET);
    const state = recoverDurableState(bets, AGENCIES, collectingLogger().log);
    expect(state.cut).toEqual({ bets: 0, journal: 0 });
    expect(state.agencies).toEqual(Array(AGENCIES).fill({ next: TARGET, finished: true }));
    expect(state.draw?.winners.map(([a, d]) => [a, d.length]).sort((x, y) => x[0]! - y[0]!)).toEqual(
      Array.from({ length: AGENCIES }, (_, i) => [i + 1, TARGET / 50]),
    );
  });
});
