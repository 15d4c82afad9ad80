/**
 * The agency registry's claims: one agency's claims reach the backend one at a time in bind
 * order, and a claim of an owner that no longer holds the agency, or whose connection is
 * closing, never reaches it (it would take the agency from the session that holds it now).
 */
import { describe, expect, it } from 'vitest';
import { AgencyRegistry, type AgencyOwner, type ClaimBackend } from '../server/registry.js';
import type { AgencyClaim } from '../server/storage/backend.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import { ErrorCode } from '../shared/protocol/messages.js';
import { deferred, type Deferred } from '../shared/util/async.js';

/** A backend whose claims the test answers by hand, numbering epochs in answer order like a database's commits. */
function manualBackend(): {
  backend: ClaimBackend;
  calls: Array<{ agency: number; answer: Deferred<void> }>;
  released: Array<{ agency: number; epoch: number }>;
  answer: (i: number) => void;
} {
  const calls: Array<{ agency: number; answer: Deferred<void> }> = [];
  const released: Array<{ agency: number; epoch: number }> = [];
  let epoch = 0;
  const backend: ClaimBackend = {
    agencies: 3,
    claim: async (agency): Promise<AgencyClaim> => {
      const answer = deferred();
      calls.push({ agency, answer });
      await answer.promise;
      return { agency, epoch: ++epoch, next: 0, finished: false };
    },
    release: async (agency, epoch) => {
      released.push({ agency, epoch });
    },
    onReplaced: () => () => {},
  };
  return { backend, calls, released, answer: (i) => calls[i]!.answer.resolve() };
}

function owner(): AgencyOwner & { replacedCount: number; isClosing: boolean } {
  return {
    replacedCount: 0,
    isClosing: false,
    replaced() {
      this.replacedCount++;
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('AgencyRegistry claims', () => {
  it("sends one agency's claims one at a time, in bind order; other agencies do not wait", async () => {
    const { backend, calls, released, answer } = manualBackend();
    const registry = new AgencyRegistry(backend);
    const [first, second, other] = [owner(), owner(), owner()];
    registry.bind(1, first);
    const firstClaim = registry.claim(1, first);
    registry.bind(2, other);
    const otherClaim = registry.claim(2, other);
    await tick();
    expect(calls.map((c) => c.agency)).toEqual([1, 2]);
    registry.bind(1, second);
    expect(first.replacedCount).toBe(1);
    const secondClaim = registry.claim(1, second);
    await tick();
    // The second claim of agency 1 waits for the first to come back.
    expect(calls).toHaveLength(2);
    answer(1);
    expect(await otherClaim).toMatchObject({ agency: 2, epoch: 1 });
    answer(0);
    expect(await firstClaim).toMatchObject({ agency: 1, epoch: 2 });
    // Replaced while in flight, the first claim's epoch is released here: its session never will.
    expect(released).toEqual([{ agency: 1, epoch: 2 }]);
    await tick();
    expect(calls.map((c) => c.agency)).toEqual([1, 2, 1]);
    answer(2);
    // Answered last, the newest connection's claim has the highest epoch.
    expect(await secondClaim).toMatchObject({ agency: 1, epoch: 3 });
  });

  it('a claim whose owner was replaced or is closing before its turn never reaches the backend', async () => {
    const { backend, calls, answer } = manualBackend();
    const registry = new AgencyRegistry(backend);
    const [old, newer] = [owner(), owner()];
    registry.bind(1, old);
    registry.bind(1, newer);
    const stale = registry.claim(1, old);
    await expect(stale).rejects.toThrow(ProtocolError);
    await expect(stale).rejects.toMatchObject({ code: ErrorCode.REPLACED });
    newer.isClosing = true;
    await expect(registry.claim(1, newer)).rejects.toMatchObject({ code: ErrorCode.SHUTTING_DOWN });
    expect(calls).toHaveLength(0);
    newer.isClosing = false;
    const claim = registry.claim(1, newer);
    await tick();
    answer(0);
    expect(await claim).toMatchObject({ agency: 1, epoch: 1 });
  });
});
