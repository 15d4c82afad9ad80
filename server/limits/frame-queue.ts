/**
 * The frames of one connection waiting to be handled, never more than `window` of them
 * decoded at once. FrameDecoder returns every frame a pushed chunk completes, and one 64 KiB
 * read can hold ~13,000 PINGs; so the bytes are kept as received and handed to the decoder
 * cut at frame boundaries, `window` frames at a time. The boundaries are found by reading only
 * each header's length (the decoder still checks every header), so whole frames inside one
 * chunk stay views of it: no copy.
 *
 * Memory per connection is then one read's bytes (the session pauses the stream while
 * `pendingBytes` > 0), the decoder's partial frame (< 8 KiB) and `window` Frame objects.
 */
import { FrameDecoder } from '../../shared/protocol/codec.js';
import { HEADER_SIZE, type Frame } from '../../shared/protocol/messages.js';

/** Where the stream stands between frames: counts frame ends without decoding anything. */
class FrameBoundaries {
  #headerLeft = HEADER_SIZE;
  #length = 0;
  #bodyLeft = 0;

  /** How many leading bytes of `buf` end at most `frames` frames (stopping right after the last end). */
  span(buf: Buffer, frames: number): number {
    let pos = 0;
    let ended = 0;
    while (pos < buf.length && ended < frames) {
      if (this.#headerLeft > 0) {
        // Bytes 1-4 of the header are the payload length, big-endian.
        if (this.#headerLeft <= 4) this.#length = this.#length * 256 + buf[pos]!;
        pos++;
        if (--this.#headerLeft > 0) continue;
        this.#bodyLeft = this.#length;
      } else {
        const take = Math.min(this.#bodyLeft, buf.length - pos);
        pos += take;
        this.#bodyLeft -= take;
      }
      if (this.#bodyLeft === 0) {
        ended++;
        this.#headerLeft = HEADER_SIZE;
        this.#length = 0;
      }
    }
    return pos;
  }
}

export class FrameQueue {
  readonly #window: number;
  readonly #decoder = new FrameDecoder();
  readonly #boundaries = new FrameBoundaries();
  readonly #frames: Frame[] = [];
  /** When the read holding each decoded frame arrived (the caller's clock), parallel to #frames. */
  readonly #times: number[] = [];
  readonly #pending: Buffer[] = [];
  readonly #pendingTimes: number[] = [];
  #shiftedAt = 0;
  #pendingBytes = 0;
  #failure: Error | null = null;

  constructor(window: number) {
    this.#window = window;
  }

  /** Keeps the chunk's bytes, decoding frames only up to the window; `at`: when it was read. */
  push(chunk: Buffer, at = 0): void {
    if (chunk.length === 0 || this.#failure !== null) return;
    this.#pending.push(chunk);
    this.#pendingTimes.push(at);
    this.#pendingBytes += chunk.length;
    this.#fill();
  }

  /** Decoded frames waiting, at most the window. */
  get length(): number {
    return this.#frames.length;
  }

  /** Bytes received and not yet decoded: while > 0 the connection should not read more. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** A bad header, reported once every frame before it has been shifted. */
  get failure(): Error | null {
    return this.#frames.length === 0 ? this.#failure : null;
  }

  /** When the read that held the frame last shifted arrived (the `at` given to push). */
  get shiftedAt(): number {
    return this.#shiftedAt;
  }

  peek(): Frame | undefined {
    return this.#frames[0];
  }

  shift(): Frame | undefined {
    const frame = this.#frames.shift();
    this.#shiftedAt = this.#times.shift() ?? this.#shiftedAt;
    // Refilled by half windows: the decoder gets several frames per push, not one.
    if (this.#frames.length <= this.#window >> 1) this.#fill();
    return frame;
  }

  /** Drops everything queued (the connection is closing). */
  clear(): void {
    this.#frames.length = 0;
    this.#times.length = 0;
    this.#pending.length = 0;
    this.#pendingTimes.length = 0;
    this.#pendingBytes = 0;
  }

  #fill(): void {
    while (this.#frames.length < this.#window && this.#pending.length > 0 && this.#failure === null) {
      const chunk = this.#pending[0]!;
      const at = this.#pendingTimes[0]!;
      const n = this.#boundaries.span(chunk, this.#window - this.#frames.length);
      const piece = n === chunk.length ? chunk : chunk.subarray(0, n);
      if (n === chunk.length) {
        this.#pending.shift();
        this.#pendingTimes.shift();
      } else this.#pending[0] = chunk.subarray(n);
      this.#pendingBytes -= n;
      try {
        for (const frame of this.#decoder.push(piece)) {
          this.#frames.push(frame);
          this.#times.push(at);
        }
        if (this.#decoder.failure !== null) throw this.#decoder.failure;
      } catch (err) {
        // Nothing after a bad header can be framed: drop the bytes, keep the frames before it.
        this.#failure = err as Error;
        this.#pending.length = 0;
        this.#pendingTimes.length = 0;
        this.#pendingBytes = 0;
      }
    }
  }
}
