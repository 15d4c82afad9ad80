/**
 * How the client gets a Duplex to the server: one TCP attempt per call. Retrying, HELLO and
 * everything after live in agency-client.ts and see only the Duplex, so the tests hand them
 * one end of `stream.duplexPair()` instead.
 */
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** One attempt at a connection; rejects with DialError. `timeoutMs` bounds the attempt. */
export type Dialer = (timeoutMs: number, signal: AbortSignal) => Promise<Duplex>;

/** An attempt to reach the server failed before any byte was exchanged: worth another try. */
export class DialError extends Error {
  constructor(address: string, detail: string) {
    super(`cannot connect to ${address}: ${detail}`);
    this.name = 'DialError';
  }
}

/** TCP to host:port; a SYN that is silently dropped fails after the attempt's timeout instead of minutes. */
export function tcpDialer(host: string, port: number): Dialer {
  const address = `${host}:${port}`;
  return (timeoutMs, signal) =>
    new Promise<Socket>((resolve, reject) => {
      // The signal aborts the attempt only: once connected, the socket is closed by its owner
      // (an abort then would destroy it with replies unread, and the server would see a reset).
      const socket = connect({ host, port, noDelay: true });
      const onAbort = (): void => {
        socket.destroy(new Error('aborted'));
      };
      const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const settle = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        settle();
        reject(new DialError(address, err.code ?? err.message));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', onError);
      socket.once('connect', () => {
        settle();
        socket.off('error', onError);
        resolve(socket);
      });
    });
}
