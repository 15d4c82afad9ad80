/**
 * The connection limits as units, on a hand-driven clock: the per-source failure throttle,
 * the separate unauthenticated/authenticated budgets, source addresses and the BUSY retry hint.
 * The expected delays are written out from the rule (base x 2^(failures - 1), halving per half-life).
 */
import { describe, expect, it } from 'vitest';
import { ConnectionBudget, TicketState, type Admission, type Ticket } from '../server/limits/connection-budget.js';
import { FailureThrottle } from '../server/limits/failure-throttle.js';
import { sourceOf } from '../server/limits/source.js';
import { retryHintMs, withRetryHint } from '../shared/net/retry-hint.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('FailureThrottle', () => {
  const opts = { baseDelayMs: 100, maxDelayMs: 1600, halfLifeMs: 10_000, maxSources: 3 };

  it('doubles the delay with each failure from one source, up to the cap', () => {
    const c = clock();
    const t = new FailureThrottle(opts, c.now);
    expect(Array.from({ length: 7 }, () => t.fail('10.0.0.1'))).toEqual([100, 200, 400, 800, 1600, 1600, 1600]);
  });

  it('keeps sources apart', () => {
    const t = new FailureThrottle(opts, clock().now);
    t.fail('10.0.0.1');
    t.fail('10.0.0.1');
    expect(t.fail('10.0.0.2')).toBe(100);
    expect(t.delayFor('10.0.0.3')).toBe(0);
  });

  it('lets a penalty fade: halved every half-life, gone after a long quiet', () => {
    const c = clock();
    const t = new FailureThrottle(opts, c.now);
    for (let i = 0; i < 3; i++) t.fail('s'); // score 3: 400 ms
    expect(t.delayFor('s')).toBe(400);
    c.advance(10_000); // score 1.5
    expect(t.delayFor('s')).toBe(Math.round(100 * 2 ** 0.5));
    expect(t.fail('s')).toBe(Math.round(100 * 2 ** 1.5)); // score 2.5
    c.advance(200_000);
    expect(t.delayFor('s')).toBe(0);
    expect(t.size).toBe(0);
    expect(t.fail('s')).toBe(100);
  });

  it('tracks at most maxSources, forgetting the least recently failing', () => {
    const c = clock();
    const t = new FailureThrottle(opts, c.now);
    for (const s of ['a', 'b', 'c']) {
      t.fail(s);
      t.fail(s);
    }
    t.fail('a'); // a is now the most recent
    t.fail('d'); // evicts b
    expect(t.size).toBe(3);
    expect(t.delayFor('b')).toBe(0);
    expect(t.delayFor('a')).toBe(400);
    expect(t.delayFor('c')).toBe(200);
  });

  it('stays bounded under a flood of distinct sources', () => {
    const t = new FailureThrottle({ ...opts, maxSources: 100 }, clock().now);
    for (let i = 0; i < 10_000; i++) t.fail(`10.${i >> 8}.${i & 255}.1`);
    expect(t.size).toBe(100);
  });
});

describe('ConnectionBudget', () => {
  const limits = { maxUnauthenticated: 4, maxUnauthenticatedPerSource: 2, maxAuthenticated: 2, authTimeoutMs: 5000 };
  const ticketOf = (a: Admission): Ticket => {
    if (!a.ok) throw new Error(`refused: ${a.reason}`);
    return a.ticket;
  };

  it('caps unauthenticated connections per source, with a hint of when the oldest times out', () => {
    const c = clock();
    const b = new ConnectionBudget(limits, c.now);
    ticketOf(b.admit('10.0.0.1'));
    c.advance(1000);
    ticketOf(b.admit('10.0.0.1'));
    c.advance(500);
    const third = b.admit('10.0.0.1');
    expect(third).toEqual({
      ok: false,
      retryMs: 3500,
      reason: '2 connections from 10.0.0.1 have not authenticated yet (limit 2 per source)',
    });
    // another source is not affected
    expect(b.admit('10.0.0.2').ok).toBe(true);
  });

  it('caps unauthenticated connections in all', () => {
    const c = clock();
    const b = new ConnectionBudget(limits, c.now);
    for (const s of ['a', 'b', 'c', 'd']) ticketOf(b.admit(s));
    c.advance(4990);
    expect(b.admit('e')).toEqual({ ok: false, retryMs: 100, reason: '4 connections have not authenticated yet (limit 4)' });
  });

  it('keeps authenticated connections out of the unauthenticated budget: a flood cannot lock an agency out', () => {
    const b = new ConnectionBudget(limits, clock().now);
    const agency = ticketOf(b.admit('10.0.0.9'));
    expect(agency.promote()).toBeNull();
    expect(agency.state).toBe(TicketState.AUTHENTICATED);
    // the flood fills the unauthenticated budget...
    for (const s of ['a', 'a', 'b', 'b']) ticketOf(b.admit(s));
    expect(b.admit('c').ok).toBe(false);
    // ...and the authenticated connection is untouched by it, and freed only by its own release
    expect(b.counts).toEqual({ unauthenticated: 4, authenticated: 1, sources: 2 });
    agency.release();
    expect(b.counts.authenticated).toBe(0);
  });

  it('frees the unauthenticated slot on promotion and refuses a promotion when the authenticated budget is full', () => {
    const b = new ConnectionBudget(limits, clock().now);
    const [t1, t2, t3] = ['s', 't', 'u'].map((s) => ticketOf(b.admit(s)));
    expect(t1!.promote()).toBeNull();
    expect(t2!.promote()).toBeNull();
    expect(b.counts).toEqual({ unauthenticated: 1, authenticated: 2, sources: 1 });
    expect(t3!.promote()).toEqual({ retryMs: 1000, reason: '2 authenticated connections are open (limit 2)' });
    expect(t3!.state).toBe(TicketState.UNAUTHENTICATED);
    t1!.release();
    expect(t3!.promote()).toBeNull();
  });

  it('releases once, whatever the state, and forgets empty sources', () => {
    const b = new ConnectionBudget(limits, clock().now);
    const a = ticketOf(b.admit('x'));
    const p = ticketOf(b.admit('y'));
    p.promote();
    for (let i = 0; i < 3; i++) {
      a.release();
      p.release();
    }
    expect(b.counts).toEqual({ unauthenticated: 0, authenticated: 0, sources: 0 });
    expect(() => a.promote()).toThrow(/released ticket cannot be promoted/);
  });

  it('stays within its limits under churn', () => {
    const c = clock();
    const b = new ConnectionBudget({ ...limits, maxUnauthenticated: 50, maxUnauthenticatedPerSource: 5, maxAuthenticated: 10 }, c.now);
    const live: Ticket[] = [];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      c.advance(rnd(10));
      const op = rnd(3);
      if (op === 0) {
        const a = b.admit(`10.0.0.${rnd(20)}`);
        if (a.ok) live.push(a.ticket);
      } else if (op === 1 && live.length > 0) {
        const t = live[rnd(live.length)]!;
        if (t.state === TicketState.UNAUTHENTICATED) t.promote();
      } else if (live.length > 0) {
        live.splice(rnd(live.length), 1)[0]!.release();
      }
      const n = b.counts;
      expect(n.unauthenticated).toBeLessThanOrEqual(50);
      expect(n.authenticated).toBeLessThanOrEqual(10);
      expect(n.unauthenticated + n.authenticated).toBe(live.length);
    }
  });
});

describe('sourceOf', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['::1', '0:0:0:0::/64'],
    ['2001:db8:aa:bb:1:2:3:4', '2001:db8:aa:bb::/64'],
    ['2001:db8:aa:bb::9', '2001:db8:aa:bb::/64'],
    ['2001:0db8:00aa:00bb:ffff::1', '2001:db8:aa:bb::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('%s counts as %s', (address, source) => {
    expect(sourceOf(address)).toBe(source);
  });
});

describe('retry hint', () => {
  it('round-trips through the ERROR text', () => {
    const text = withRetryHint('16 connections from 10.0.0.1 have not authenticated yet', 1234.4);
    expect(text).toBe('16 connections from 10.0.0.1 have not authenticated yet; retry in 1234 ms');
    expect(retryHintMs(text)).toBe(1234);
    expect(retryHintMs('disk full')).toBeNull();
  });
});
