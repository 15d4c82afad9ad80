/**
 * The server's bounded frame queue: whatever the chunking, it yields the same frames as the
 * plain decoder, in order, yet never holds more than its window decoded, and it keeps frames
 * inside one chunk as views of it. Expected frames are built by hand (type, length, payload).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameQueue } from '../server/limits/frame-queue.js';
import { FrameTooLargeError } from '../shared/protocol/errors.js';
import type { Frame } from '../shared/protocol/messages.js';

const PING = 0x0b;
const BATCH = 0x03;

function frame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** Drains the queue, checking the window on every step; returns the frames. */
function drain(q: FrameQueue, window: number): Frame[] {
  const out: Frame[] = [];
  for (let f = q.shift(); f !== undefined; f = q.shift()) {
    out.push(f);
    expect(q.length).toBeLessThanOrEqual(window);
  }
  return out;
}

describe('FrameQueue', () => {
  it('decodes at most the window from one 64 KiB chunk of PINGs, the rest kept as bytes', () => {
    const chunk = Buffer.concat(Array.from({ length: 13_107 }, () => frame(PING, Buffer.alloc(0))));
    const q = new FrameQueue(32);
    q.push(chunk);
    expect(q.length).toBe(32);
    expect(q.pendingBytes).toBe(chunk.length - 32 * 5);
    for (let i = 0; i < 16; i++) q.shift();
    // refilled once half the window is taken
    expect(q.length).toBe(32);
    expect(q.pendingBytes).toBe(chunk.length - 48 * 5);
    expect(drain(q, 32)).toHaveLength(13_107 - 16);
    expect(q.pendingBytes).toBe(0);
  });

  it('keeps a whole frame inside one chunk as a view of it (no copy)', () => {
    const payload = Buffer.alloc(8000, 7);
    const chunk = Buffer.concat([frame(BATCH, payload), frame(PING, Buffer.alloc(0)), frame(BATCH, payload)]);
    const q = new FrameQueue(1);
    q.push(chunk);
    const frames = drain(q, 1);
    expect(frames.map((f) => f.type)).toEqual([BATCH, PING, BATCH]);
    expect(frames[2]!.payload.buffer).toBe(chunk.buffer);
    expect(frames[2]!.payload.byteOffset).toBe(chunk.byteOffset + 8005 + 5 + 5);
  });

  it('yields the frames the bytes hold, in order, however they are cut, never past the window', () => {
    const anyFrame = fc
      .tuple(fc.constantFrom(PING, BATCH, 0x01, 0x05), fc.uint8Array({ maxLength: 300 }))
      .map(([t, p]) => ({ type: t, payload: Buffer.from(p) }));
    fc.assert(
      fc.property(
        fc.array(anyFrame, { maxLength: 60 }),
        fc.array(fc.nat(400), { maxLength: 30 }),
        fc.integer({ min: 1, max: 8 }),
        (frames, cuts, window) => {
          const bytes = Buffer.concat(frames.map((f) => frame(f.type, f.payload)));
          const q = new FrameQueue(window);
          const got: Frame[] = [];
          let pos = 0;
          for (const cut of [...cuts, bytes.length]) {
            const end = Math.min(bytes.length, pos + cut);
            q.push(bytes.subarray(pos, end));
            pos = end;
            expect(q.length).toBeLessThanOrEqual(window);
            // take some, not all: the queue must resume from bytes it kept
            for (let i = 0; i < 2; i++) {
              const f = q.shift();
              if (f !== undefined) got.push(f);
            }
          }
          got.push(...drain(q, window));
          expect(got.map((f) => [f.type, f.payload.toString('hex')])).toEqual(frames.map((f) => [f.type, f.payload.toString('hex')]));
          expect(q.pendingBytes).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports a bad header only after the frames before it, and drops the bytes after it', () => {
    const bad = Buffer.from([BATCH, 0xff, 0xff, 0xff, 0xff]);
    const q = new FrameQueue(2);
    q.push(
      Buffer.concat([frame(PING, Buffer.alloc(0)), frame(PING, Buffer.alloc(0)), frame(PING, Buffer.alloc(0)), bad, Buffer.alloc(1000)]),
    );
    expect(q.failure).toBeNull();
    expect(drain(q, 2)).toHaveLength(3);
    expect(q.failure).toBeInstanceOf(FrameTooLargeError);
    expect(q.pendingBytes).toBe(0);
    q.push(frame(PING, Buffer.alloc(0)));
    expect(q.length).toBe(0);
  });

  it('clear() drops frames and bytes', () => {
    const q = new FrameQueue(4);
    q.push(Buffer.concat(Array.from({ length: 10 }, () => frame(PING, Buffer.alloc(0)))));
    q.clear();
    expect([q.length, q.pendingBytes, q.shift()]).toEqual([0, 0, undefined]);
  });
});
