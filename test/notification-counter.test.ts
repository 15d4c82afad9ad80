import { afterEach, describe, expect, it } from 'vitest';
import { ProtectedNotificationCounter } from '../server/sync/notification-counter.js';
import { startTsWorker, terminateWorkers } from './fixtures/run-worker.js';

const WORKER = new URL('./fixtures/counter-worker.ts', import.meta.url);

afterEach(async () => {
  await terminateWorkers();
});

interface RangeReport {
  counted: number;
  runDraw: number;
}
interface RaceReport {
  results: Array<{ runDraw: boolean; counted: boolean; finished: number }>;
}

/** Runs one 'range' worker per [from, to], all released together by one barrier. */
async function markRanges(counter: SharedArrayBuffer, ranges: Array<[number, number]>): Promise<RangeReport[]> {
  const barrier = new SharedArrayBuffer(4);
  const workers = ranges.map(([from, to]) => startTsWorker(WORKER, { mode: 'range', counter, barrier, parties: ranges.length, from, to }));
  const reports = (await Promise.all(workers.map((w) => w.next()))) as unknown as RangeReport[];
  expect(await Promise.all(workers.map((w) => w.exited))).toEqual(ranges.map(() => 0));
  return reports;
}

describe('ProtectedNotificationCounter on one thread', () => {
  it('counts each agency once and tells exactly the completing call to run the draw', () => {
    const c = new ProtectedNotificationCounter(ProtectedNotificationCounter.allocate(3));
    expect([c.expected, c.finished, c.allFinished]).toEqual([3, 0, false]);
    expect(c.markFinished(2)).toEqual({ counted: true, finished: 1, expected: 3, runDraw: false });
    expect(c.markFinished(2)).toEqual({ counted: false, finished: 1, expected: 3, runDraw: false });
    expect(c.hasFinished(2)).toBe(true);
    expect(c.hasFinished(1)).toBe(false);
    expect(c.markFinished(1)).toEqual({ counted: true, finished: 2, expected: 3, runDraw: false });
    expect(c.markFinished(3)).toEqual({ counted: true, finished: 3, expected: 3, runDraw: true });
    expect(c.allFinished).toBe(true);
    // A repeated notification after the draw started never starts another one.
    expect(c.markFinished(3)).toEqual({ counted: false, finished: 3, expected: 3, runDraw: false });
    expect(c.markFinished(1).runDraw).toBe(false);
  });

  it('rejects agencies outside 1..expected and a non-positive size', () => {
    const c = new ProtectedNotificationCounter(ProtectedNotificationCounter.allocate(5));
    for (const bad of [0, 6, -1, 1.5, Number.NaN]) expect(() => c.markFinished(bad)).toThrow(RangeError);
    expect(c.finished).toBe(0);
    expect(c.hasFinished(0)).toBe(false);
    expect(c.hasFinished(6)).toBe(false);
    expect(() => ProtectedNotificationCounter.allocate(0)).toThrow(RangeError);
    expect(() => ProtectedNotificationCounter.allocate(2.5)).toThrow(RangeError);
  });

  it('two views of the same SharedArrayBuffer see each other', () => {
    const sab = ProtectedNotificationCounter.allocate(2);
    const a = new ProtectedNotificationCounter(sab);
    const b = new ProtectedNotificationCounter(sab);
    expect(a.markFinished(1).counted).toBe(true);
    expect(b.markFinished(1).counted).toBe(false);
    expect(b.markFinished(2).runDraw).toBe(true);
    expect(a.allFinished).toBe(true);
  });
});

describe('ProtectedNotificationCounter across worker threads', () => {
  it('20 threads × 10,000 increments lose no update and start exactly one draw', async () => {
    const THREADS = 20;
    const EACH = 10_000;
    const sab = ProtectedNotificationCounter.allocate(THREADS * EACH);
    const ranges = Array.from({ length: THREADS }, (_, w): [number, number] => [w * EACH + 1, (w + 1) * EACH]);
    const reports = await markRanges(sab, ranges);
    const counter = new ProtectedNotificationCounter(sab);
    expect(counter.finished).toBe(THREADS * EACH);
    expect(counter.allFinished).toBe(true);
    expect(reports.map((r) => r.counted)).toEqual(ranges.map(() => EACH));
    expect(reports.reduce((n, r) => n + r.runDraw, 0)).toBe(1);
  });

  it('8 threads marking the same 2,000 agencies at once: each counts once, one draw', async () => {
    const AGENCIES = 2_000;
    const sab = ProtectedNotificationCounter.allocate(AGENCIES);
    const reports = await markRanges(
      sab,
      Array.from({ length: 8 }, (): [number, number] => [1, AGENCIES]),
    );
    expect(new ProtectedNotificationCounter(sab).finished).toBe(AGENCIES);
    expect(reports.reduce((n, r) => n + r.counted, 0)).toBe(AGENCIES);
    expect(reports.reduce((n, r) => n + r.runDraw, 0)).toBe(1);
  });

  it('the last two of five agencies finishing at the same instant start exactly one draw (200 trials)', async () => {
    const TRIALS = 200;
    const counters = Array.from({ length: TRIALS }, () => {
      const sab = ProtectedNotificationCounter.allocate(5);
      const c = new ProtectedNotificationCounter(sab);
      for (const a of [1, 2, 3]) c.markFinished(a);
      return sab;
    });
    const barrier = new SharedArrayBuffer(TRIALS * 4);
    const racers = [4, 5].map((agency) => startTsWorker(WORKER, { mode: 'race', counters, barrier, agency }));
    const [r4, r5] = (await Promise.all(racers.map((r) => r.next()))) as unknown as [RaceReport, RaceReport];
    expect(await Promise.all(racers.map((r) => r.exited))).toEqual([0, 0]);
    for (let t = 0; t < TRIALS; t++) {
      const a = r4.results[t]!;
      const b = r5.results[t]!;
      expect([a.counted, b.counted], `trial ${t}`).toEqual([true, true]);
      expect(Number(a.runDraw) + Number(b.runDraw), `trial ${t}`).toBe(1);
      // Whoever saw 5 finished is the one that runs the draw; the other saw 4.
      expect([a.finished, b.finished].sort(), `trial ${t}`).toEqual([4, 5]);
      expect(a.runDraw ? a.finished : b.finished, `trial ${t}`).toBe(5);
      expect(new ProtectedNotificationCounter(counters[t]!).finished).toBe(5);
    }
  });
});
