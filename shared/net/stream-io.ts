/** Writing to and closing a Duplex the same way on both ends of a connection. */
import type { Duplex } from 'node:stream';

/** How long either end waits for the peer to close its side after ending ours, before destroying. */
export const CLOSE_GRACE_MS = 1000;

/**
 * Writes `data`, honouring backpressure: resolves true once the stream can take more
 * (at once, or on 'drain'), false when it closed first, was already unwritable, or `signal`
 * aborted first. Its listeners live only as long as the wait.
 */
export function writeRespectingDrain(stream: Duplex, data: Buffer, signal?: AbortSignal): Promise<boolean> {
  if (stream.destroyed || !stream.writable || signal?.aborted === true) return Promise.resolve(false);
  if (stream.write(data)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (taken: boolean): void => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      resolve(taken);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    const onAbort = (): void => done(false);
    stream.once('drain', onDrain);
    stream.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Ends our side and waits for the stream to close, destroying it after `graceMs` if the
 * peer does not close its side. A peer that already ended lets us finish at once.
 */
export function endAndClose(stream: Duplex, graceMs: number): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => stream.destroy(), graceMs);
    stream.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.end();
    if (stream.readableEnded) stream.destroy();
  });
}
