/**
 * FINISHED, the draw and WINNERS_QUERY: through sessions with a real pool and bets.csv, and
 * the Draw on its own when the draw task fails. Each test has its own server state.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AckStatus, ErrorCode, MessageType } from '../shared/protocol/messages.js';
import { deferred } from '../shared/util/async.js';
import { SessionHarness, batch, bet, csvRows, finished, ping, winnersQuery } from './helpers/session-harness.js';

describe('FINISHED, draw and winners', () => {
  let h: SessionHarness;
  beforeEach(async () => {
    h = await SessionHarness.open({ agencies: 2 });
  });
  afterEach(() => h.close());

  it('answers NOT_READY at once to an agency that has not sent FINISHED, and refuses its new bets after FINISHED', async () => {
    const p = await h.bound(1);
    const kept = [bet(1, '180', 7574)];
    await h.store(p, [kept]);
    p.stream.write(winnersQuery(1));
    expect(await p.next()).toEqual({ type: MessageType.NOT_READY, finished: 0, expected: 2 });
    p.stream.write(finished(1));
    expect(await p.next()).toEqual({ type: MessageType.FINISHED_ACK, finished: 1, expected: 2 });
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'notificacion', agencia: 1, terminadas: 1, esperadas: 2 }));
    // A retransmission of a stored batch is still DUPLICATE; a new bet is refused with the reason, consuming nothing.
    p.stream.write(Buffer.concat([batch(0, kept), batch(1, [bet(1, '190', 7574)])]));
    expect(await p.next()).toMatchObject({ type: MessageType.BATCH_ACK, first: 0, status: AckStatus.DUPLICATE });
    const refused = await p.next();
    expect(refused).toMatchObject({ type: MessageType.BATCH_ACK, first: 1, status: AckStatus.REJECTED, index: 0 });
    expect((refused as { reason: string }).reason).toBe('agency 1 finished this draw; start a new draw with a fresh bets volume');
    expect(h.backend.next(1)).toBe(1);
    expect(h.onDisk()).toBe(csvRows(kept));
  });

  it('keeps FINISHED and the draw across a restart: WELCOME says finished, winners come from the recovered result', async () => {
    const one = await h.bound(1);
    const two = await h.bound(2);
    await h.store(one, [[bet(1, '111', 7574), bet(1, '100', 0)]]);
    await h.store(two, [[bet(2, '37', 7574)]]);
    one.stream.write(finished(1));
    expect(await one.next()).toMatchObject({ type: MessageType.FINISHED_ACK, finished: 1 });
    await h.restart();
    const again = await h.bound(1);
    expect(again.welcome).toEqual({ type: MessageType.WELCOME, agency: 1, next: 2, finished: true });
    expect(h.services.draw.finished).toBe(1);
    const two2 = await h.bound(2);
    two2.stream.write(finished(2));
    expect(await two2.next()).toMatchObject({ type: MessageType.FINISHED_ACK, finished: 2 });
    again.stream.write(winnersQuery(1));
    expect(await again.next()).toEqual({ type: MessageType.WINNERS, last: true, documents: ['111'] });
    await h.restart();
    // Drawn before the restart: answered from the recovered result, no second draw.
    const third = await h.bound(2);
    third.stream.write(winnersQuery(2));
    expect(await third.next()).toEqual({ type: MessageType.WINNERS, last: true, documents: ['37'] });
    expect(h.logged().filter((l) => l.action === 'sorteo' && l.result === 'success')).toHaveLength(1);
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'recuperacion', agencias_terminadas: 2, sorteo: 'done' }));
  });

  it('draws at start when every FINISHED is on disk but the draw was cut short', async () => {
    const one = await h.bound(1);
    await h.store(one, [[bet(1, '5', 7574)]]);
    one.stream.write(finished(1));
    await one.next();
    // The draw task never ends before the restart: the DRAW record is not written.
    const hold = deferred<never>();
    vi.spyOn(h.pool, 'draw').mockReturnValue(hold.promise);
    const two = await h.bound(2);
    two.stream.write(finished(2));
    expect(await two.next()).toMatchObject({ type: MessageType.FINISHED_ACK, finished: 2 });
    vi.restoreAllMocks();
    hold.reject(new Error('cut by the restart'));
    await h.restart();
    await h.services.draw.nextOutcome();
    expect(h.services.draw.drawn).toBe(true);
    const p = await h.bound(1);
    p.stream.write(winnersQuery(1));
    expect(await p.next()).toEqual({ type: MessageType.WINNERS, last: true, documents: ['5'] });
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
    const h = await SessionHarness.open({ agencies: 1 });
    try {
      const draws = vi.spyOn(h.pool, 'draw').mockRejectedValueOnce(new Error('bets.csv:7: expected 6 fields'));
      const p = await h.bound(1);
      await h.store(p, [[bet(1, '7', 7574), bet(1, '8', 1)]]);
      const draw = h.services.draw;
      const firstOutcome = draw.nextOutcome();
      p.stream.write(finished(1));
      expect(await p.next()).toEqual({ type: MessageType.FINISHED_ACK, finished: 1, expected: 1 });
      await firstOutcome; // settles on the failure too: a held query is not left waiting
      expect(draw.drawn).toBe(false);
      await draw.idle(); // no draw runs after a failure
      const secondOutcome = draw.nextOutcome();
      expect(await draw.winners(1)).toEqual({ ready: false, finished: 1, expected: 1 }); // and retries
      await secondOutcome;
      expect(await draw.winners(1)).toEqual({ ready: true, documents: ['7'] });
      expect(draws).toHaveBeenCalledTimes(2);
      const results = h.logged().filter((l) => l.action === 'sorteo');
      expect(results.map((l) => l.result)).toEqual(['in_progress', 'fail', 'in_progress', 'success']);
    } finally {
      vi.restoreAllMocks();
      await h.close();
    }
  });
});
