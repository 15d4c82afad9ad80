/**
 * The client's Connection (client/connection.ts) over a plain Duplex: what a long run of
 * sends leaves behind, and how a send blocked on backpressure ends when the connection fails.
 */
import { Duplex } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Connection } from '../client/connection.js';
import { ServerRefusedError } from '../client/errors.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { ErrorCode, MessageType } from '../shared/protocol/messages.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A stream that takes every write at once, or holds them all (never drains) when `stuck`. */
function sink(stuck = false): Duplex {
  return new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      if (!stuck) callback();
    },
    highWaterMark: 64,
  });
}

const frame = encodeMessage({ type: MessageType.PING });

describe('Connection', () => {
  it('keeps nothing per send: a long run of sends leaves the heap where it was', async () => {
    const conn = new Connection(sink());
    const heapAfter = async (sends: number): Promise<number> => {
      for (let i = 0; i < sends; i++) await conn.send(frame);
      gc();
      return process.memoryUsage().heapUsed;
    };
    const base = await heapAfter(1_000);
    // Each send once kept a reaction on a promise that only the connection's failure settled.
    const grown = (await heapAfter(200_000)) - base;
    expect(grown).toBeLessThan(4 << 20);
  });

  it('ends a send blocked on backpressure with the reason of an ERROR that arrives meanwhile', async () => {
    const stream = sink(true);
    const conn = new Connection(stream);
    const blocked = conn.send(Buffer.alloc(1024));
    stream.push(encodeMessage({ type: MessageType.ERROR, code: ErrorCode.SHUTTING_DOWN, message: 'going away' }));
    await expect(blocked).rejects.toThrow(ServerRefusedError);
    await expect(blocked).rejects.toThrow(/going away/);
    await expect(conn.send(frame)).rejects.toThrow(/going away/);
  });
});
