/**
 * Session: BATCH → BATCH_ACK with a real pool and a real bets.csv. Acks come only once rows
 * are on disk, in frame order; duplicates are never stored twice, refusals cost only their
 * batch, and a session reads at most one window ahead (backpressure). Each test has its own
 * server state.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { BetPool } from '../server/pool/bet-pool.js';
import { encodeFrame } from '../shared/protocol/codec.js';
import { AckStatus, BATCH_WINDOW, MessageType, type Message } from '../shared/protocol/messages.js';
import { deferred } from '../shared/util/async.js';
import { SessionHarness, batch, bet, csvRows, hello, ping, type PoolLike } from './helpers/session-harness.js';

let h: SessionHarness;
afterEach(() => h.close());

const open = async (wrapPool?: (pool: BetPool) => PoolLike): Promise<SessionHarness> => {
  h = await SessionHarness.open({ agencies: 2, ...(wrapPool ? { wrapPool } : {}) });
  return h;
};

/** The pool as the services see it, counting its store calls and the batches in each. */
function counting(pool: BetPool, calls: number[]): PoolLike {
  return {
    storeBatches: (agency, batches) => {
      calls.push(batches.length);
      return pool.storeBatches(agency, batches);
    },
    draw: () => pool.draw(),
  };
}

const seqAndStatus = (m: Message): [number, number] => {
  if (m.type !== MessageType.BATCH_ACK) throw new Error(`expected a BATCH_ACK, got ${JSON.stringify(m)}`);
  return [m.seq, m.status];
};

describe('Session batches', () => {
  it('stores a BATCH and acknowledges it only once its rows are on disk', async () => {
    const calls: number[] = [];
    await open((pool) => counting(pool, calls));
    const p = await h.bound(1);
    const bets = [bet(1, '111', 7574), bet(1, '100', 0), bet(1, '112', 7574, { firstName: 'José' }), bet(1, '101', 7575)];
    p.stream.write(batch(1, bets));
    const ack = await p.next();
    const disk = h.onDisk();
    expect(ack).toEqual({ type: MessageType.BATCH_ACK, seq: 1, status: AckStatus.STORED, count: 4 });
    expect(disk, 'bets.csv as the ack arrived').toBe(csvRows(bets));
    expect(calls).toEqual([1]);
    expect(h.logged()).toContainEqual(
      expect.objectContaining({ action: 'apuesta_recibida', result: 'success', cantidad: 4, agencia: 1, lote: 1 }),
    );
  });

  it('rejects a batch with a bad bet, with index and reason, storing none of it', async () => {
    await open();
    const p = await h.bound(1);
    p.stream.write(batch(2, [bet(1, '120', 1), bet(1, '121', 2), bet(1, '12x', 3), bet(1, '123', 4)]));
    const ack = await p.next();
    expect(ack).toMatchObject({ type: MessageType.BATCH_ACK, seq: 2, status: AckStatus.REJECTED, index: 2 });
    expect((ack as { reason: string }).reason).toMatch(/document "12x"/);
    expect(h.onDisk()).toBe('');
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'apuesta_recibida', result: 'fail', lote: 2, indice: 2 }));
  });

  it('rejects a batch whose count cannot fit in its bytes before it reaches the pool', async () => {
    const calls: number[] = [];
    await open((pool) => counting(pool, calls));
    const p = await h.bound(1);
    const head = Buffer.alloc(6);
    head.writeUInt32BE(3, 0);
    head.writeUInt16BE(65_535, 4);
    p.stream.write(encodeFrame(MessageType.BATCH, head));
    const ack = await p.next();
    expect(ack).toMatchObject({ type: MessageType.BATCH_ACK, seq: 3, status: AckStatus.REJECTED, index: 0 });
    expect((ack as { reason: string }).reason).toMatch(/65535 bets cannot fit in 0 bytes/);
    expect(calls, 'pool calls').toEqual([]);
    expect(h.onDisk()).toBe('');
  });

  it('acknowledges a repeated seq as DUPLICATE without storing it twice', async () => {
    await open();
    const p = await h.bound(1);
    const first = [bet(1, '111', 7574)];
    await h.store(p, [first]);
    p.stream.write(batch(1, first));
    expect(await p.next()).toEqual({ type: MessageType.BATCH_ACK, seq: 1, status: AckStatus.DUPLICATE, count: 1 });
    expect(h.onDisk()).toBe(csvRows(first));
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'apuesta_duplicada', result: 'success', lote: 1 }));
  });

  it('acks several batches of one write in order; a bad one loses only itself, a copy is DUPLICATE', async () => {
    await open();
    const p = await h.bound(1);
    const good1 = [bet(1, '130', 30)];
    const good2 = [bet(1, '132', 32), bet(1, '133', 33)];
    p.stream.write(Buffer.concat([batch(3, good1), batch(4, [bet(1, '131', 10000)]), batch(5, good2), batch(5, good2)]));
    const acks = [await p.next(), await p.next(), await p.next(), await p.next()];
    expect(acks.map(seqAndStatus)).toEqual([
      [3, AckStatus.STORED],
      [4, AckStatus.REJECTED],
      [5, AckStatus.STORED],
      [5, AckStatus.DUPLICATE],
    ]);
    expect(h.onDisk()).toBe(csvRows([...good1, ...good2]));
  });

  it.each([
    ['the same seq twice', 1, 1],
    ['a lower seq after it', 2, 1],
  ])('stores a batch queued behind a refused one of the same run (%s) instead of calling it DUPLICATE', async (_what, badSeq, goodSeq) => {
    await open();
    const p = await h.bound(1);
    const good = bet(1, '200', 5);
    p.stream.write(Buffer.concat([batch(badSeq, [bet(1, '20x', 5)]), batch(goodSeq, [good])]));
    const acks = [await p.next(), await p.next()];
    const disk = h.onDisk();
    expect(acks[0], 'the refused batch').toMatchObject({ seq: badSeq, status: AckStatus.REJECTED });
    expect(acks[1], `the batch behind it; bets.csv holds:\n${disk}`).toMatchObject({ seq: goodSeq, status: AckStatus.STORED });
    expect(disk).toBe(csvRows([good]));
  });

  it('tells a reconnecting agency the last stored seq', async () => {
    await open();
    const p = await h.bound(1);
    await h.store(p, [[bet(1, '1', 1)], [bet(1, '2', 2)]], 4);
    await p.session.close();
    const again = h.connect();
    again.stream.write(hello(1));
    expect(await again.next()).toEqual({ type: MessageType.WELCOME, agency: 1, lastSeq: 5 });
  });

  it(`reads at most ${BATCH_WINDOW} frames ahead while a batch is in the pool, then pauses (backpressure)`, async () => {
    const perCall: number[] = [];
    const gate = deferred();
    let inFlight = 0;
    let maxInFlight = 0;
    await open((pool) => ({
      storeBatches: async (agency, batches) => {
        perCall.push(batches.length);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          await gate.promise;
          return await pool.storeBatches(agency, batches);
        } finally {
          inFlight--;
        }
      },
      draw: () => pool.draw(),
    }));
    const p = await h.bound(2);
    const paused = once(p.server, 'pause');
    const bets = Array.from({ length: 60 }, (_, i) => bet(2, `3${i}`, i));
    const frames = bets.map((b, i) => batch(i + 1, [b]));
    for (const f of frames) p.stream.write(f);
    // The first batch is held in the pool; the session reads one window ahead, then stops reading.
    await paused;
    expect(perCall, 'runs handed to the pool while it holds the first').toEqual([1]);
    const unread = p.server.readableLength + p.stream.writableLength;
    expect(unread, 'bytes left unread').toBeGreaterThanOrEqual(frames[0]!.length * (60 - 1 - BATCH_WINDOW));
    gate.resolve();
    const acks: Message[] = [];
    for (let i = 0; i < 60; i++) acks.push(await p.next());
    expect(acks.map(seqAndStatus)).toEqual(frames.map((_, i) => [i + 1, AckStatus.STORED]));
    expect(perCall.reduce((n, c) => n + c, 0)).toBe(60);
    expect(Math.max(...perCall)).toBeLessThanOrEqual(BATCH_WINDOW);
    expect(perCall.length, `batches per pool call: ${perCall.join(' ')}`).toBeLessThan(60); // queued batches share runs
    expect(maxInFlight).toBe(1);
    expect(h.onDisk()).toBe(csvRows(bets));
    // Reading resumed once the queue drained.
    p.stream.write(ping());
    expect(await p.next()).toMatchObject({ type: MessageType.PONG });
    expect(p.server.isPaused()).toBe(false);
  });
});
