/**
 * The writing side of a session (server/session.ts): replies written one at a time, each
 * waiting for 'drain', and the connection's last words (an ERROR saying why, then the end).
 * It knows when the peer holds a reply back (`blocked`): the session's idle deadline and its
 * close tell by it a peer that does not read from a session that is working for its peer.
 *
 * A peer that does not read costs at most one frame (or one run of acks) past the socket's
 * buffer, and nothing forever: a reply it leaves untaken for CLOSE_GRACE_MS once the session
 * closes, or a closing ERROR it does not take, gets the connection destroyed.
 */
import type { Duplex } from 'node:stream';
import { CLOSE_GRACE_MS, endAndClose, writeRespectingDrain } from '../shared/net/stream-io.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { ErrorCode, MessageType } from '../shared/protocol/messages.js';
import { settlesWithin } from '../shared/util/async.js';

/** What a closing session says last, and why it closed (the desconexion line's motivo); null: nothing. */
export type Farewell = { code: ErrorCode; message: string; motivo?: string } | null;

export const SHUTDOWN: Farewell = {
  code: ErrorCode.SHUTTING_DOWN,
  message: 'the server is shutting down; batches not acknowledged were not stored',
  motivo: 'server shutting down',
};

export const REPLACED: Farewell = {
  code: ErrorCode.REPLACED,
  message: 'a newer connection of this agency proved its key and took over; this one is closed (its acknowledged batches are stored)',
  motivo: 'replaced by a newer connection of the agency',
};

export class SessionOutput {
  readonly #stream: Duplex;
  /** A write is waiting for 'drain': the peer is not taking its replies. */
  #blocked = false;

  constructor(stream: Duplex) {
    this.#stream = stream;
  }

  get blocked(): boolean {
    return this.#blocked;
  }

  /** Writes a frame, waiting for 'drain' when the stream asks for it; a closed stream drops it. */
  async send(frame: Buffer): Promise<void> {
    this.#blocked = true;
    try {
      await writeRespectingDrain(this.#stream, frame);
    } finally {
      this.#blocked = false;
    }
  }

  /**
   * Waits for the frame being handled (`handling()`: the current run's end, null once none
   * runs), so a batch in the pool is acknowledged first. A reply the peer does not take for
   * CLOSE_GRACE_MS ends the wait by destroying the stream (the pending write then settles);
   * work of the server's own (the pool, the draw) is waited for.
   */
  async awaitHandling(handling: () => Promise<void> | null): Promise<void> {
    for (let run = handling(); run !== null; run = handling()) {
      if (await settlesWithin(run, CLOSE_GRACE_MS)) return;
      if (this.#blocked) this.#stream.destroy();
    }
  }

  /**
   * Says why with an ERROR (written without waiting for 'drain'), then ends the stream:
   * endAndClose destroys it if the peer does not take the ERROR and close its side within
   * CLOSE_GRACE_MS.
   */
  async farewell(farewell: Farewell): Promise<void> {
    if (farewell !== null && this.#stream.writable)
      this.#stream.write(encodeMessage({ type: MessageType.ERROR, code: farewell.code, message: farewell.message }));
    await endAndClose(this.#stream, CLOSE_GRACE_MS);
  }
}
