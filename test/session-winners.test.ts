/**
 * FINISHED, the draw and WINNERS_QUERY: through sessions with a real pool and bets.csv, and
 * the Draw on its own when the draw task fails. Each test has its own server state.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Draw, type DrawRunner } from '../server/draw.js';
import { ProtectedNotificationCounter } from '../server/sync/notification-counter.js';
import { createLogger } from '../shared/logging/logger.js';
import { AckStatus, ErrorCode, MessageType } from '../shared/protocol/messages.js';
import { deferred } from '../shared/util/async.js';
import { SessionHarness, batch, bet, csvRows, finished, ping, winnersQuery } from './helpers/session-harness.js';

describe('FINISHED, draw and winners', () => {
  let h: SessionHarness;
  beforeEach(async () => {
    h = await SessionHarness.open({ agencies: 2 });
  });
  afterEach(() => h.close());

  it('answers NOT_READY at once to an agency that has not sent FINISHED, and refuses its batches after FINISHED', async () => {
    const p = await h.bound(1);
    const kept = [bet(1, '180', 7574)];
    await h.store(p, [kept]);
    p.stream.write(winnersQuery(1));
    expect(await p.next()).toEqual({ type: MessageType.NOT_READY, finished: 0, expected: 2 });
    p.stream.write(finished(1));
    expect(await p.next()).toEqual({ type: MessageType.FINISHED_ACK, finished: 1, expected: 2 });
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'notificacion', agencia: 1, terminadas: 1, esperadas: 2 }));
    p.stream.write(batch(2, [bet(1, '190', 7574)])); // above the last stored seq (1)
    expect(await p.next()).toMatchObject({ type: MessageType.BATCH_ACK, seq: 2, status: AckStatus.REJECTED, index: 0 });
    expect(h.onDisk()).toBe(csvRows(kept));
  });

  it("holds a finished agency's WINNERS_QUERY while others are missing; closing the session releases it", async () => {
    const p = await h.bound(1);
    p.stream.write(finished(1));
    expect(await p.next()).toMatchObject({ type: MessageType.FINISHED_ACK, finished: 1 });
    const draw = h.services.draw;
    const held = deferred();
    const nextOutcome = draw.nextOutcome.bind(draw);
    vi.spyOn(draw, 'nextOutcome').mockImplementation(() => {
      held.resolve();
      return nextOutcome();
    });
    p.stream.write(Buffer.concat([winnersQuery(1), ping()]));
    await held.promise; // the query waits for the draw's outcome
    await p.session.close(true);
    // Neither NOT_READY for the query nor PONG for the PING behind it went out: only the goodbye.
    expect(await p.next()).toMatchObject({ type: MessageType.ERROR, code: ErrorCode.SHUTTING_DOWN });
    await p.ended;
    expect(draw.drawn).toBe(false);
  });

  it('answers a held query the moment the draw ends, each agency exactly its own winners, drawing once', async () => {
    const one = await h.bound(1);
    const two = await h.bound(2);
    const ones = [bet(1, '111', 7574), bet(1, '100', 0), bet(1, '112', 7574), bet(1, '101', 7575)];
    const twos = [bet(2, '36', 1), bet(2, '37', 7574)];
    await h.store(one, [ones.slice(0, 2), ones.slice(2)]);
    await h.store(two, [twos]);
    one.stream.write(finished(1));
    expect(await one.next()).toEqual({ type: MessageType.FINISHED_ACK, finished: 1, expected: 2 });
    one.stream.write(winnersQuery(1));
    const oneAnswer = one.next();
    two.stream.write(finished(2));
    expect(await two.next()).toEqual({ type: MessageType.FINISHED_ACK, finished: 2, expected: 2 });
    // Agency 1 asked once, before the draw: its answer comes without asking again.
    expect(await oneAnswer).toEqual({ type: MessageType.WINNERS, last: true, documents: ['111', '112'] });
    expect(h.services.draw.drawn).toBe(true);
    two.stream.write(winnersQuery(2));
    expect(await two.next()).toEqual({ type: MessageType.WINNERS, last: true, documents: ['37'] });
    // A repeated FINISHED counts once.
    two.stream.write(finished(2));
    expect(await two.next()).toEqual({ type: MessageType.FINISHED_ACK, finished: 2, expected: 2 });
    expect(h.services.draw.finished).toBe(2);
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'notificacion', agencia: 2, repetida: 'si' }));
    const draws = h.logged().filter((l) => l.action === 'sorteo' && l.result === 'success');
    expect(draws).toHaveLength(1);
    expect(draws[0]).toMatchObject({ apuestas: ones.length + twos.length, ganadores: 3 });
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'consulta_ganadores', agencia: 1, cant_ganadores: 2 }));
  });

  it('answers PING with the progress of the finished set and the draw', async () => {
    const one = await h.bound(1);
    one.stream.write(finished(1));
    await one.next();
    one.stream.write(ping());
    expect(await one.next()).toEqual({ type: MessageType.PONG, finished: 1, expected: 2, drawn: false });
  });
});

describe('Draw when the draw task fails', () => {
  it('wakes the held queries, starts the draw again on the next winners(), and answers once it succeeds', async () => {
    const flags = new ProtectedNotificationCounter(ProtectedNotificationCounter.allocate(1));
    let draws = 0;
    const flaky: DrawRunner = {
      draw: () =>
        ++draws === 1 ? Promise.reject(new Error('bets.csv:7: expected 6 fields')) : Promise.resolve({ winners: [[1, ['7']]], scanned: 3 }),
    };
    const lines: string[] = [];
    const log = createLogger({ level: 'info', format: 'json', destination: { write: (l: string) => lines.push(l) } });
    const draw = new Draw(flaky, flags, log);
    const firstOutcome = draw.nextOutcome();
    expect(draw.finish(1)).toMatchObject({ finished: 1, expected: 1, runDraw: true });
    await firstOutcome; // settles on the failure too: a held query is not left waiting
    expect(draw.drawn).toBe(false);
    await draw.idle(); // no draw runs after a failure
    const secondOutcome = draw.nextOutcome();
    expect(secondOutcome).not.toBe(firstOutcome);
    expect(draw.winners(1)).toEqual({ ready: false, finished: 1, expected: 1 }); // and retries
    await secondOutcome;
    expect(draw.winners(1)).toEqual({ ready: true, documents: ['7'] });
    expect(draws).toBe(2);
    const results = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.action === 'sorteo');
    expect(results.map((l) => l.result)).toEqual(['in_progress', 'fail', 'in_progress', 'success']);
  });
});
