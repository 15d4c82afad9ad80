/**
 * Session: BATCH → BATCH_ACK with a real pool, a real bets.csv and its journal. Acks come
 * only once rows are on disk, in frame order; each batch is judged by (agency, first, count)
 * against the agency's durable `next`: duplicates are never stored twice (however the bets
 * are cut), gaps and overlaps are OUT_OF_ORDER, refusals cost only their batch and consume it,
 * and a session reads at most one window ahead (backpressure). Each test has its own state.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { BetPool } from '../server/pool/bet-pool.js';
import { encodeFrame } from '../shared/protocol/codec.js';
import { AckStatus, BATCH_WINDOW, MessageType, type Message } from '../shared/protocol/messages.js';
import { deferred } from '../shared/util/async.js';
import { SessionHarness, batch, bet, csvRows, ping, type PoolLike } from './helpers/session-harness.js';

/** The encoded bets of a BATCH frame (its payload past first and count). */
const batchBets = (bets: Parameters<typeof batch>[1]): Buffer => batch(0, bets).subarray(5 + 6);

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
    recordFinished: (agency) => pool.recordFinished(agency),
  };
}

const firstAndStatus = (m: Message): [number, number] => {
  if (m.type !== MessageType.BATCH_ACK) throw new Error(`expected a BATCH_ACK, got ${JSON.stringify(m)}`);
  return [m.first, m.status];
};

describe('Session batches', () => {
  it('stores a BATCH and acknowledges it only once its rows are on disk', async () => {
    const calls: number[] = [];
    await open((pool) => counting(pool, calls));
    const p = await h.bound(1);
    const bets = [bet(1, '111', 7574), bet(1, '100', 0), bet(1, '112', 7574, { firstName: 'José' }), bet(1, '101', 7575)];
    p.stream.write(batch(0, bets));
    const ack = await p.next();
    const disk = h.onDisk();
    expect(ack).toEqual({ type: MessageType.BATCH_ACK, first: 0, status: AckStatus.STORED, count: 4 });
    expect(disk, 'bets.csv as the ack arrived').toBe(csvRows(bets));
    expect(calls).toEqual([1]);
    expect(h.logged()).toContainEqual(
      expect.objectContaining({ action: 'apuesta_recibida', result: 'success', cantidad: 4, agencia: 1, lote: 0 }),
    );
  });

  it('rejects a batch with a bad bet, with index and reason, storing none of it; the refusal consumes it', async () => {
    await open();
    const p = await h.bound(1);
    const refused = batch(0, [bet(1, '120', 1), bet(1, '121', 2), bet(1, '12x', 3), bet(1, '123', 4)]);
    p.stream.write(refused);
    const ack = await p.next();
    expect(ack).toMatchObject({ type: MessageType.BATCH_ACK, first: 0, status: AckStatus.REJECTED, index: 2 });
    expect((ack as { reason: string }).reason).toMatch(/document "12x"/);
    expect(h.onDisk()).toBe('');
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'apuesta_recibida', result: 'fail', lote: 0, indice: 2 }));
    // Sent again (a retry after a lost ack): already consumed, so DUPLICATE; the agency goes on from bet 4.
    p.stream.write(Buffer.concat([refused, batch(4, [bet(1, '124', 5)])]));
    expect([await p.next(), await p.next()].map(firstAndStatus)).toEqual([
      [0, AckStatus.DUPLICATE],
      [4, AckStatus.STORED],
    ]);
    expect(h.onDisk()).toBe(csvRows([bet(1, '124', 5)]));
  });

  it('refuses a batch whose count cannot fit in its bytes in the pool, before anything is sized by it', async () => {
    const calls: number[] = [];
    await open((pool) => counting(pool, calls));
    const p = await h.bound(1);
    const head = Buffer.alloc(6);
    head.writeUInt16BE(65_535, 4);
    p.stream.write(encodeFrame(MessageType.BATCH, head));
    const ack = await p.next();
    expect(ack).toMatchObject({ type: MessageType.BATCH_ACK, first: 0, status: AckStatus.REJECTED, index: 0 });
    expect((ack as { reason: string }).reason).toMatch(/65535 bets cannot fit in 0 bytes/);
    expect(calls, 'pool calls').toEqual([1]);
    expect(h.onDisk()).toBe('');
    expect(h.backend.next(1), 'consumed, as any refused batch').toBe(65_535);
  });

  it('acknowledges a batch already stored as DUPLICATE without storing it twice, however the bets are cut', async () => {
    await open();
    const p = await h.bound(1);
    const bets = [bet(1, '1', 1), bet(1, '2', 2), bet(1, '3', 3), bet(1, '4', 4)];
    await h.store(p, [bets.slice(0, 3)]);
    // The same bets cut in other batches (a client restarted with another batch.maxAmount).
    p.stream.write(
      Buffer.concat([batch(0, bets.slice(0, 3)), batch(0, bets.slice(0, 2)), batch(2, bets.slice(2, 3)), batch(3, bets.slice(3))]),
    );
    const acks = [await p.next(), await p.next(), await p.next(), await p.next()];
    expect(acks.map(firstAndStatus)).toEqual([
      [0, AckStatus.DUPLICATE],
      [0, AckStatus.DUPLICATE],
      [2, AckStatus.DUPLICATE],
      [3, AckStatus.STORED],
    ]);
    expect(acks[1]).toMatchObject({ count: 2 });
    expect(h.onDisk()).toBe(csvRows(bets));
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'apuesta_duplicada', result: 'success', lote: 2 }));
  });

  it('answers a gap or an overlap OUT_OF_ORDER with where to resume, storing nothing of it', async () => {
    await open();
    const p = await h.bound(1);
    const bets = [bet(1, '1', 1), bet(1, '2', 2), bet(1, '3', 3)];
    p.stream.write(batch(1, bets.slice(1, 2)));
    expect(await p.next()).toEqual({ type: MessageType.BATCH_ACK, first: 1, status: AckStatus.OUT_OF_ORDER, next: 0 });
    await h.store(p, [bets.slice(0, 2)]);
    p.stream.write(Buffer.concat([batch(1, bets.slice(1)), batch(5, [bet(1, '6', 6)])]));
    expect(await p.next()).toEqual({ type: MessageType.BATCH_ACK, first: 1, status: AckStatus.OUT_OF_ORDER, next: 2 });
    expect(await p.next()).toEqual({ type: MessageType.BATCH_ACK, first: 5, status: AckStatus.OUT_OF_ORDER, next: 2 });
    expect(h.onDisk()).toBe(csvRows(bets.slice(0, 2)));
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'apuesta_fuera_de_orden', result: 'fail', lote: 5, siguiente: 2 }));
  });

  it('acks several batches of one write in order; a bad one is consumed and costs only itself, a copy is DUPLICATE', async () => {
    await open();
    const p = await h.bound(1);
    const good1 = [bet(1, '130', 30)];
    const good2 = [bet(1, '132', 32), bet(1, '133', 33)];
    p.stream.write(Buffer.concat([batch(0, good1), batch(1, [bet(1, '131', 10000)]), batch(2, good2), batch(2, good2)]));
    const acks = [await p.next(), await p.next(), await p.next(), await p.next()];
    expect(acks.map(firstAndStatus)).toEqual([
      [0, AckStatus.STORED],
      [1, AckStatus.REJECTED],
      [2, AckStatus.STORED],
      [2, AckStatus.DUPLICATE],
    ]);
    expect(h.onDisk()).toBe(csvRows([...good1, ...good2]));
  });

  it('tells a reconnecting agency where to resume, also after a restart, and stores nothing twice', async () => {
    await open();
    const p = await h.bound(1);
    expect(p.welcome).toEqual({ type: MessageType.WELCOME, agency: 1, next: 0, finished: false });
    const bets = [bet(1, '1', 1), bet(1, '2', 2), bet(1, '3', 3)];
    await h.store(p, [bets.slice(0, 1), bets.slice(1, 2)]);
    await p.session.close();
    expect((await h.bound(1)).welcome).toEqual({ type: MessageType.WELCOME, agency: 1, next: 2, finished: false });
    await h.restart();
    const again = await h.bound(1);
    expect(again.welcome).toEqual({ type: MessageType.WELCOME, agency: 1, next: 2, finished: false });
    // The client resent what was in flight: the stored part is DUPLICATE, the rest is stored.
    again.stream.write(Buffer.concat([batch(1, bets.slice(1, 2)), batch(2, bets.slice(2))]));
    expect([await again.next(), await again.next()].map(firstAndStatus)).toEqual([
      [1, AckStatus.DUPLICATE],
      [2, AckStatus.STORED],
    ]);
    expect(h.onDisk()).toBe(csvRows(bets));
    expect(h.logged()).toContainEqual(
      expect.objectContaining({ action: 'recuperacion', result: 'success', apuestas: 2, sorteo: 'pending' }),
    );
  });

  it('keeps two connections of one agency from both storing the same batch (one is judged after the other)', async () => {
    const gate = deferred();
    const calls: number[] = [];
    await open((pool) => ({
      ...counting(pool, calls),
      storeBatches: async (agency, batches) => {
        calls.push(batches.length);
        await gate.promise;
        return pool.storeBatches(agency, batches);
      },
    }));
    const one = await h.bound(1);
    const b = [bet(1, '1', 1)];
    one.stream.write(batch(0, b));
    while (calls.length === 0) await new Promise((r) => setImmediate(r));
    // A second copy admitted while the first is in the pool, straight through Ingest with the
    // session's epoch (the agency's first claim: 1), as a retry would be: it waits for the
    // first, then is DUPLICATE.
    const second = h.services.ingest.admit(1, 1, [{ type: MessageType.BATCH, first: 0, count: 1, bets: batchBets(b) }]);
    gate.resolve();
    expect(await one.next()).toMatchObject({ first: 0, status: AckStatus.STORED });
    const admitted = await second;
    expect(admitted.replaced ? [] : admitted.acks.map(firstAndStatus)).toEqual([[0, AckStatus.DUPLICATE]]);
    expect(h.onDisk()).toBe(csvRows(b));
  });

  it('reads again once a run has taken every queued frame, even with part of a frame left from the read that filled the window', async () => {
    await open();
    const p = await h.bound(2);
    const bets = Array.from({ length: BATCH_WINDOW + 1 }, (_, i) => bet(2, `4${i}`, i));
    const frames = bets.map((b, i) => batch(i, [b]));
    const last = frames[BATCH_WINDOW]!;
    // One read: a full window of frames and the start of one more, whose bytes wait undecoded.
    p.stream.write(Buffer.concat([...frames.slice(0, BATCH_WINDOW), last.subarray(0, 3)]));
    const acks: Message[] = [];
    for (let i = 0; i < BATCH_WINDOW; i++) acks.push(await p.next());
    // The run took the whole window: the session must be reading, or the rest is never seen.
    p.stream.write(last.subarray(3));
    acks.push(await p.next());
    expect(acks.map(firstAndStatus)).toEqual(frames.map((_, i) => [i, AckStatus.STORED]));
    expect(h.onDisk()).toBe(csvRows(bets));
  });

  it('stops reading for good once closing, even when the run in the pool settles after', async () => {
    const gate = deferred();
    const entered = deferred();
    await open((pool) => ({
      storeBatches: async (agency, batches) => {
        entered.resolve();
        await gate.promise;
        return pool.storeBatches(agency, batches);
      },
      draw: () => pool.draw(),
      recordFinished: (agency) => pool.recordFinished(agency),
    }));
    const p = await h.bound(2);
    let resumed = 0;
    p.server.on('resume', () => resumed++);
    p.stream.write(batch(0, [bet(2, '51', 1)]));
    await entered.promise;
    const closing = p.session.close(true);
    gate.resolve();
    await closing;
    expect(resumed, 'the socket resumed after close() began').toBe(0);
    expect(p.server.isPaused()).toBe(true);
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
      recordFinished: (agency) => pool.recordFinished(agency),
    }));
    const p = await h.bound(2);
    const paused = once(p.server, 'pause');
    const total = 2 * BATCH_WINDOW - 4;
    const bets = Array.from({ length: total }, (_, i) => bet(2, `3${i}`, i));
    const frames = bets.map((b, i) => batch(i, [b]));
    for (const f of frames) p.stream.write(f);
    // The first batch is held in the pool; the session reads one window ahead, then stops reading.
    await paused;
    expect(perCall, 'runs handed to the pool while it holds the first').toEqual([1]);
    const unread = p.server.readableLength + p.stream.writableLength;
    expect(unread, 'bytes left unread').toBeGreaterThanOrEqual(frames[0]!.length * (total - 1 - BATCH_WINDOW));
    gate.resolve();
    const acks: Message[] = [];
    for (let i = 0; i < total; i++) acks.push(await p.next());
    expect(acks.map(firstAndStatus)).toEqual(frames.map((_, i) => [i, AckStatus.STORED]));
    expect(perCall.reduce((n, c) => n + c, 0)).toBe(total);
    expect(Math.max(...perCall)).toBeLessThanOrEqual(BATCH_WINDOW);
    expect(perCall.length, `batches per pool call: ${perCall.join(' ')}`).toBeLessThan(total); // queued batches share runs
    expect(maxInFlight).toBe(1);
    expect(h.onDisk()).toBe(csvRows(bets));
    // Reading resumed once the queue drained.
    p.stream.write(ping());
    expect(await p.next()).toMatchObject({ type: MessageType.PONG });
    expect(p.server.isPaused()).toBe(false);
  });
});
