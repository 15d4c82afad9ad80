/**
 * How the client gets a Duplex to the server: one TCP attempt per call. Retrying, HELLO and
 * everything after live in agency-client.ts and see only the Duplex, so the tests hand them
 * one end of `stream.duplexPair()` instead.
 */
import { connect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { nodeTls } from '../shared/util/lazy-builtin.js';

/**
 * One attempt at a connection; rejects with DialError. `timeoutMs` bounds the attempt.
 * `upcoming`, when present, names (`host:port`) the server the next attempt goes to.
 */
export type Dialer = ((timeoutMs: number, signal: AbortSignal) => Promise<Duplex>) & { readonly upcoming?: () => string };

/** An attempt to reach the server failed before any byte was exchanged: worth another try. */
export class DialError extends Error {
  constructor(address: string, detail: string) {
    super(`cannot connect to ${address}: ${detail}`);
    this.name = 'DialError';
  }
}

/** The TLS handshake failed: not retried, the configuration (CLI_TLS_CA) or the server must change. */
export class TlsHandshakeError extends Error {
  constructor(address: string, detail: string) {
    // host/port, not host:port: a log reader takes the text after the last ':' of a field.
    const where = address.replace(/:(\d+)$/, '/$1');
    super(
      `TLS handshake with ${where} failed (${detail}); check that the server uses TLS and that CLI_TLS_CA is the CA that signed its certificate`,
    );
    this.name = 'TlsHandshakeError';
  }
}

/** TCP to host:port; a SYN that is silently dropped fails after the attempt's timeout instead of minutes. */
export function tcpDialer(host: string, port: number): Dialer {
  return dialer(`${host}:${port}`, 'connect', () => connect({ host, port, noDelay: true }));
}

/**
 * TLS to host:port trusting only `ca` (not the system's CAs); the server's certificate must
 * name `host` (a DNS name or an IP address in its subjectAltName). A handshake that fails
 * (wrong CA, wrong name) is a DialError like a refused connection, with the TLS reason.
 */
export function tlsDialer(host: string, port: number, ca: Buffer): Dialer {
  // SNI takes a DNS name only; an IP host is checked against the certificate's IP SANs.
  const servername = isIP(host) === 0 ? host : undefined;
  return dialer(`${host}:${port}`, 'secureConnect', () => nodeTls().connect({ host, port, ca, servername }).setNoDelay(true));
}

/**
 * Several servers in turn: each attempt goes to the next one (round robin), so after a lost
 * connection or a failed attempt the client tries another server, and comes back round.
 */
export function roundRobinDialer(targets: ReadonlyArray<{ readonly address: string; readonly dial: Dialer }>): Dialer {
  if (targets.length === 0) throw new RangeError('roundRobinDialer needs at least one server');
  let next = 0;
  const dial = (timeoutMs: number, signal: AbortSignal): Promise<Duplex> => {
    const target = targets[next]!;
    next = (next + 1) % targets.length;
    return target.dial(timeoutMs, signal);
  };
  return Object.assign(dial, { upcoming: () => targets[next]!.address });
}

/** TLS when the configuration names a CA (CLI_TLS_CA), else plain TCP; one server or several in turn. */
export function configuredDialer(config: {
  host: string;
  port: number;
  servers?: ReadonlyArray<{ host: string; port: number }>;
  tls: { options: { ca: Buffer } } | null;
}): Dialer {
  const one = ({ host, port }: { host: string; port: number }): Dialer =>
    config.tls === null ? tcpDialer(host, port) : tlsDialer(host, port, config.tls.options.ca);
  const servers = config.servers ?? [{ host: config.host, port: config.port }];
  return roundRobinDialer(servers.map((s) => ({ address: `${s.host}:${s.port}`, dial: one(s) })));
}

function dialer(address: string, ready: 'connect' | 'secureConnect', open: () => Socket | TLSSocket): Dialer {
  return (timeoutMs, signal) =>
    new Promise<Socket>((resolve, reject) => {
      // The signal aborts the attempt only: once connected, the socket is closed by its owner
      // (an abort then would destroy it with replies unread, and the server would see a reset).
      const socket = open();
      const onAbort = (): void => {
        socket.destroy(new Error('aborted'));
      };
      const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const settle = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      // With TLS, an error after the TCP connect is the handshake failing (an untrusted or
      // misnamed certificate, a server without TLS): another try would fail the same way.
      let tcpUp = false;
      socket.once('connect', () => {
        tcpUp = true;
      });
      const onError = (err: NodeJS.ErrnoException): void => {
        settle();
        reject(
          ready === 'secureConnect' && tcpUp
            ? new TlsHandshakeError(address, err.message)
            : new DialError(address, err.code ?? err.message),
        );
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', onError);
      socket.once(ready, () => {
        settle();
        socket.off('error', onError);
        resolve(socket);
      });
    });
}
