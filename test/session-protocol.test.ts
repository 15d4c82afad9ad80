/**
 * Session: binding (PING, HELLO → CHALLENGE, PROOF → WELCOME, the HELLO timeout) and every
 * protocol error, each answered with one ERROR and the end of the stream. Each test has its
 * own server state.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeFrame, encodeMessage } from '../shared/protocol/codec.js';
import { AckStatus, ErrorCode, MessageType, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { deferred } from '../shared/util/async.js';
import { SessionHarness, batch, bet, csvRows, expectError, finished, hello, ping, proof, winnersQuery } from './helpers/session-harness.js';

let h: SessionHarness;
beforeEach(async () => {
  h = await SessionHarness.open({ agencies: 2 });
});
afterEach(() => h.close());

describe('Session binding', () => {
  it('answers PING before HELLO, then binds with HELLO → CHALLENGE, PROOF → WELCOME', async () => {
    const p = h.connect();
    p.stream.write(ping());
    expect(await p.next()).toEqual({ type: MessageType.PONG, finished: 0, expected: 2, drawn: false });
    p.stream.write(hello(1));
    const challenge = await p.next();
    expect(challenge).toMatchObject({ type: MessageType.CHALLENGE });
    expect((challenge as { nonce: Buffer }).nonce).toHaveLength(32);
    expect(p.session.agency, 'not bound before the PROOF').toBe(0);
    p.stream.write(proof());
    expect(await p.next()).toEqual({ type: MessageType.WELCOME, agency: 1, next: 0, finished: false });
    expect(p.session.agency).toBe(1);
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'conexion', result: 'success', agencia: 1, siguiente: 0 }));
  });

  it('sends a fresh nonce to every connection', async () => {
    const nonces = await Promise.all(
      [1, 2].map(async (agency) => {
        const p = h.connect();
        p.stream.write(hello(agency));
        return ((await p.next()) as { nonce: Buffer }).nonce.toString('hex');
      }),
    );
    expect(new Set(nonces).size).toBe(2);
  });

  it('ends a connection that proves no key in time with ERROR AUTH_TIMEOUT, PINGs or not', async () => {
    const p = h.connect({ authTimeoutMs: 50 });
    p.stream.write(ping());
    expect(await p.next()).toMatchObject({ type: MessageType.PONG });
    await expectError(p, ErrorCode.AUTH_TIMEOUT);
    const q = h.connect({ authTimeoutMs: 50 });
    q.stream.write(hello(1));
    expect(await q.next()).toMatchObject({ type: MessageType.CHALLENGE });
    await expectError(q, ErrorCode.AUTH_TIMEOUT);
  });

  it('frees the agency when its session closes, so a new connection may bind it', async () => {
    const first = await h.bound(2);
    await first.session.close();
    await h.bound(2);
  });
});

describe('Session idle deadline (authenticated)', () => {
  it('closes a bound connection that sends nothing with ERROR BUSY and a short retry hint', async () => {
    const p = await h.bound(1, { idleTimeoutMs: 100 });
    expect(await p.next()).toMatchObject({
      type: MessageType.ERROR,
      code: ErrorCode.BUSY,
      message: expect.stringMatching(/the client has sent nothing for 100 ms \(SERVER_IDLE_TIMEOUT\).*retry in 100 ms/),
    });
    await p.ended;
    await h.bound(1); // the agency is free again
  });

  it('keeps a connection whose WINNERS_QUERY is held for the draw past its idle deadline', async () => {
    const held = await h.bound(1, { idleTimeoutMs: 250 });
    held.stream.write(finished(1));
    expect(await held.next()).toMatchObject({ type: MessageType.FINISHED_ACK, finished: 1, expected: 2 });
    const draw = h.services.draw;
    const waiting = deferred();
    const nextOutcome = draw.nextOutcome.bind(draw);
    vi.spyOn(draw, 'nextOutcome').mockImplementation(() => {
      waiting.resolve();
      return nextOutcome();
    });
    held.stream.write(winnersQuery(1));
    await waiting.promise;
    // The clock: a silent connection bound after the query was held, with the same deadline.
    const silent = await h.bound(2, { idleTimeoutMs: 250 });
    await expectError(silent, ErrorCode.BUSY);
    const closedByDeadline = h.logged().filter((l) => l.action === 'protocolo' && l.codigo === ErrorCode.BUSY);
    expect(
      closedByDeadline.map((l) => l.agencia),
      'only the silent one',
    ).toEqual([2]);
    const two = await h.bound(2);
    two.stream.write(finished(2));
    expect(await two.next()).toMatchObject({ type: MessageType.FINISHED_ACK, finished: 2 });
    expect(await held.next()).toEqual({ type: MessageType.WINNERS, last: true, documents: [] });
  });
});

describe('Session protocol errors', () => {
  it('answers BATCH before HELLO with ERROR NOT_BOUND and ends the stream, storing nothing', async () => {
    const p = h.connect();
    p.stream.write(batch(1, [bet(1, '1', 1)]));
    await expectError(p, ErrorCode.NOT_BOUND);
    expect(h.onDisk()).toBe('');
  });

  it('answers a server-only message before HELLO with ERROR NOT_BOUND', async () => {
    const p = h.connect();
    p.stream.write(encodeMessage({ type: MessageType.WELCOME, agency: 1, next: 0, finished: false }));
    await expectError(p, ErrorCode.NOT_BOUND);
  });

  it('answers HELLO for agency 99 with ERROR UNKNOWN_AGENCY', async () => {
    const p = h.connect();
    p.stream.write(hello(99));
    await expectError(p, ErrorCode.UNKNOWN_AGENCY);
  });

  it('lets a second connection that proves the agency take it over: the first gets ERROR REPLACED', async () => {
    const first = await h.bound(2);
    await h.store(first, [[bet(2, '1', 1)]]);
    const second = await h.bound(2);
    expect(second.welcome).toMatchObject({ agency: 2, next: 1 });
    await expectError(first, ErrorCode.REPLACED);
    await h.store(second, [[bet(2, '2', 2)]], 1);
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'conexion', result: 'success', agencia: 2, siguiente: 1 }));
  });

  it('answers FINISHED for another agency with WRONG_AGENCY, counting nothing', async () => {
    const p = await h.bound(1);
    p.stream.write(finished(2));
    await expectError(p, ErrorCode.WRONG_AGENCY);
    expect(h.services.draw.finished).toBe(0);
  });

  it('answers WINNERS_QUERY for another agency with WRONG_AGENCY', async () => {
    const p = await h.bound(1);
    p.stream.write(encodeMessage({ type: MessageType.WINNERS_QUERY, agency: 2 }));
    await expectError(p, ErrorCode.WRONG_AGENCY);
  });

  it('answers a HELLO of protocol 1 with BAD_VERSION naming both versions', async () => {
    const p = h.connect();
    p.stream.write(encodeMessage({ type: MessageType.HELLO, version: 1, agency: 1 }));
    const error = await p.next();
    expect(error).toMatchObject({ type: MessageType.ERROR, code: ErrorCode.BAD_VERSION });
    expect((error as { message: string }).message).toMatch(/version 1 is not supported; this server speaks version 2/);
    await p.ended;
  });

  it.each([
    [
      'a HELLO of another protocol version',
      encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION + 1, agency: 1 }),
      ErrorCode.BAD_VERSION,
      false,
    ],
    ['a PROOF with no HELLO before it', proof(), ErrorCode.UNEXPECTED_MESSAGE, false],
    ['a second HELLO on a bound connection', hello(1), ErrorCode.ALREADY_BOUND, true],
    ['a second PROOF on a bound connection', proof(), ErrorCode.UNEXPECTED_MESSAGE, true],
    [
      'a server-only message',
      encodeMessage({ type: MessageType.WELCOME, agency: 1, next: 0, finished: false }),
      ErrorCode.UNEXPECTED_MESSAGE,
      true,
    ],
    ['an unknown message type', Buffer.from([0x7f, 0, 0, 0, 0]), ErrorCode.UNKNOWN_TYPE, true],
    ['a malformed FINISHED', Buffer.from([MessageType.FINISHED, 0, 0, 0, 2, 0, 1]), ErrorCode.MALFORMED, true],
    ['a BATCH shorter than its head', encodeFrame(MessageType.BATCH, Buffer.alloc(4)), ErrorCode.MALFORMED, true],
    ['a PROOF of 31 bytes', encodeFrame(MessageType.PROOF, Buffer.alloc(31)), ErrorCode.MALFORMED, true],
    ['a BATCH running past bet 2^32 - 1', batch(0xffff_ffff, [bet(1, '1', 1)]), ErrorCode.MALFORMED, true],
  ])('answers %s with the matching ERROR', async (_what, frame, code, bound) => {
    const p = bound ? await h.bound(1) : h.connect();
    p.stream.write(frame);
    await expectError(p, code);
  });

  it('answers an oversize frame header with FRAME_TOO_LARGE', async () => {
    const p = await h.bound(1);
    p.stream.write(Buffer.from([MessageType.BATCH, 0x00, 0x00, 0x20, 0x00]));
    await expectError(p, ErrorCode.FRAME_TOO_LARGE);
  });

  it('acknowledges the batch before a bad header in the same chunk, then sends one ERROR', async () => {
    const p = await h.bound(1);
    const good = bet(1, '150', 15);
    p.stream.write(Buffer.concat([batch(0, [good]), Buffer.from([MessageType.BATCH, 0x00, 0x00, 0x20, 0x00])]));
    expect(await p.next()).toEqual({ type: MessageType.BATCH_ACK, first: 0, status: AckStatus.STORED, count: 1 });
    expect(h.onDisk()).toBe(csvRows([good]));
    await expectError(p, ErrorCode.FRAME_TOO_LARGE);
  });
});
