/**
 * Session: binding (PING, HELLO → WELCOME, the HELLO timeout) and every protocol error, each
 * answered with one ERROR and the end of the stream. Each test has its own server state.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeMessage } from '../shared/protocol/codec.js';
import { AckStatus, ErrorCode, MessageType, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { SessionHarness, batch, bet, csvRows, expectError, finished, hello, ping } from './helpers/session-harness.js';

let h: SessionHarness;
beforeEach(async () => {
  h = await SessionHarness.open({ agencies: 2 });
});
afterEach(() => h.close());

describe('Session binding', () => {
  it('answers PING before HELLO, then binds with HELLO → WELCOME', async () => {
    const p = h.connect();
    p.stream.write(ping());
    expect(await p.next()).toEqual({ type: MessageType.PONG, finished: 0, expected: 2, drawn: false });
    p.stream.write(hello(1));
    expect(await p.next()).toEqual({ type: MessageType.WELCOME, agency: 1, lastSeq: 0 });
    expect(p.session.agency).toBe(1);
    expect(h.logged()).toContainEqual(expect.objectContaining({ action: 'conexion', result: 'success', agencia: 1, ultimo_lote: 0 }));
  });

  it('ends a connection that sends no HELLO in time with ERROR NOT_BOUND', async () => {
    const p = h.connect(50);
    p.stream.write(ping());
    expect(await p.next()).toMatchObject({ type: MessageType.PONG });
    await expectError(p, ErrorCode.NOT_BOUND);
  });

  it('frees the agency when its session closes, so a new connection may bind it', async () => {
    const first = await h.bound(2);
    await first.session.close();
    await h.bound(2);
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
    p.stream.write(encodeMessage({ type: MessageType.WELCOME, agency: 1, lastSeq: 0 }));
    await expectError(p, ErrorCode.NOT_BOUND);
  });

  it('answers HELLO for agency 99 with ERROR UNKNOWN_AGENCY', async () => {
    const p = h.connect();
    p.stream.write(hello(99));
    await expectError(p, ErrorCode.UNKNOWN_AGENCY);
  });

  it('answers a second HELLO for a connected agency with AGENCY_BUSY, and the first connection lives on', async () => {
    const first = await h.bound(2);
    const second = h.connect();
    second.stream.write(hello(2));
    await expectError(second, ErrorCode.AGENCY_BUSY);
    first.stream.write(ping());
    expect(await first.next()).toMatchObject({ type: MessageType.PONG });
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

  it.each([
    [
      'a HELLO of another protocol version',
      encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION + 1, agency: 1 }),
      ErrorCode.BAD_VERSION,
    ],
    ['a second HELLO on a bound connection', hello(1), ErrorCode.ALREADY_BOUND],
    ['a server-only message', encodeMessage({ type: MessageType.WELCOME, agency: 1, lastSeq: 0 }), ErrorCode.UNEXPECTED_MESSAGE],
    ['an unknown message type', Buffer.from([0x7f, 0, 0, 0, 0]), ErrorCode.UNKNOWN_TYPE],
    ['a malformed FINISHED', Buffer.from([MessageType.FINISHED, 0, 0, 0, 2, 0, 1]), ErrorCode.MALFORMED],
    ['a BATCH numbered 0', encodeFrame(MessageType.BATCH, Buffer.alloc(6)), ErrorCode.MALFORMED],
  ])('answers %s with the matching ERROR', async (_what, frame, code) => {
    const p = code === ErrorCode.BAD_VERSION ? h.connect() : await h.bound(1);
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
    p.stream.write(Buffer.concat([batch(100, [good]), Buffer.from([MessageType.BATCH, 0x00, 0x00, 0x20, 0x00])]));
    expect(await p.next()).toEqual({ type: MessageType.BATCH_ACK, seq: 100, status: AckStatus.STORED, count: 1 });
    expect(h.onDisk()).toBe(csvRows([good]));
    await expectError(p, ErrorCode.FRAME_TOO_LARGE);
  });
});
