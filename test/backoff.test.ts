/**
 * retryWithBackoff (shared/util/async.ts): the delays between attempts, a steady start
 * (steadyMs) and what ends the retries.
 */
import { describe, expect, it } from 'vitest';
import { retryWithBackoff } from '../shared/util/async.js';

/** The waits before each retry of an attempt that fails `failures` times, then succeeds. */
async function waits(failures: number, opts: { steadyMs?: number; maxMs?: number }): Promise<number[]> {
  const seen: number[] = [];
  const result = await retryWithBackoff(
    async (n) => {
      if (n <= failures) throw new Error(`attempt ${n} refused`);
      return n;
    },
    { initialMs: 10, factor: 2, maxMs: opts.maxMs ?? 1000, timeoutMs: 10_000, ...opts, onRetry: (_, __, delay) => seen.push(delay) },
  );
  expect(result).toBe(failures + 1);
  return seen;
}

describe('retryWithBackoff', () => {
  it('grows the delay by its factor after each failure, up to maxMs', async () => {
    expect(await waits(5, { maxMs: 100 })).toEqual([10, 20, 40, 80, 100]);
  });

  it('keeps the first delay for steadyMs from the first attempt, then grows it', async () => {
    const seen = await waits(9, { steadyMs: 60 });
    const steady = seen.findIndex((d) => d !== 10);
    // At least one steady wait, and no more than steadyMs of them (each lasts 10 ms or more).
    expect(steady).toBeGreaterThanOrEqual(1);
    expect(steady).toBeLessThanOrEqual(60 / 10 + 1);
    expect(seen.slice(steady)).toEqual([20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000, 1000].slice(0, seen.length - steady));
  });

  it('stops at the first error that is not retryable, and at the deadline', async () => {
    const fatal = retryWithBackoff(
      async () => {
        throw new Error('bad key');
      },
      { initialMs: 10, maxMs: 10, timeoutMs: 10_000, retryable: (e) => e.message !== 'bad key' },
    );
    await expect(fatal).rejects.toThrow('bad key');
    let attempts = 0;
    const late = retryWithBackoff(
      async () => {
        attempts++;
        throw new Error('refused');
      },
      { initialMs: 10, maxMs: 10, steadyMs: 1000, timeoutMs: 50 },
    );
    await expect(late).rejects.toThrow('refused');
    expect(attempts).toBeGreaterThanOrEqual(2);
  });
});
