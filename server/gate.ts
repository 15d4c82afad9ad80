/**
 * The acceptor's door: every new TCP connection is counted against the connection budget
 * (server/limits/connection-budget.ts) by its source before any byte of it is read, wrapped in
 * TLS when configured, and either handed on with its ticket or refused with ERROR BUSY and a
 * retry hint. A refused connection is ended after the ERROR (destroyed if the peer does not
 * take it within CLOSE_GRACE_MS); past MAX_REFUSING such closings in progress, more are
 * dropped without a word, so a flood costs a bounded number of sockets.
 * Refusals are logged at most once a second, with how many there were since the last line.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContext } from 'node:tls';
import type { ServerTls } from '../shared/config/tls-files.js';
import type { Logger } from '../shared/logging/logger.js';
import { withRetryHint } from '../shared/net/retry-hint.js';
import { CLOSE_GRACE_MS, endAndClose } from '../shared/net/stream-io.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { ErrorCode, MessageType } from '../shared/protocol/messages.js';
import { nodeTls } from '../shared/util/lazy-builtin.js';
import { ConnectionBudget, type BudgetLimits, type Refusal, type Ticket } from './limits/connection-budget.js';
import { sourceOf } from './limits/source.js';

const REFUSAL_LOG_EVERY_MS = 1000;

export interface Admitted {
  /** The socket, or the TLS stream over it. */
  readonly stream: Duplex;
  readonly ticket: Ticket;
  /** What the per-source limits count: the IPv4 address or the IPv6 /64. */
  readonly source: string;
}

export class Gate {
  /** Refused connections being closed at once; past it, more are dropped without a word. */
  static readonly MAX_REFUSING = 256;
  readonly #budget: ConnectionBudget;
  readonly #secure: SecureContext | null;
  readonly #log: Logger;
  #refusing = 0;
  #refusedSinceLog = 0;
  #lastRefusalLog = 0;

  constructor(limits: BudgetLimits, tls: ServerTls | null, log: Logger) {
    this.#budget = new ConnectionBudget(limits);
    this.#secure = tls === null ? null : nodeTls().createSecureContext(tls.options);
    this.#log = log;
  }

  get counts(): { unauthenticated: number; authenticated: number } {
    return this.#budget.counts;
  }

  /** The connection's stream and ticket, or null when it is refused (the gate answers and closes it). */
  admit(socket: Socket): Admitted | null {
    const source = sourceOf(socket.remoteAddress);
    const admission = this.#budget.admit(source);
    if (!admission.ok && this.#refusing >= Gate.MAX_REFUSING) {
      socket.destroy();
      this.#logRefusal(source, admission);
      return null;
    }
    const stream = this.#secure === null ? socket : new (nodeTls().TLSSocket)(socket, { isServer: true, secureContext: this.#secure });
    if (!admission.ok) {
      this.#refuse(stream, source, admission);
      return null;
    }
    return { stream, ticket: admission.ticket, source };
  }

  #refuse(stream: Duplex, source: string, refusal: Refusal): void {
    this.#refusing++;
    this.#logRefusal(source, refusal);
    stream.on('error', () => {}); // a reset from a refused peer is no news
    stream.resume(); // whatever the peer sends is read and dropped, so its FIN is seen
    const message = withRetryHint(`server busy: ${refusal.reason}`, refusal.retryMs);
    stream.write(encodeMessage({ type: MessageType.ERROR, code: ErrorCode.BUSY, message }));
    void endAndClose(stream, CLOSE_GRACE_MS).then(() => {
      this.#refusing--;
    });
  }

  #logRefusal(source: string, refusal: Refusal): void {
    this.#refusedSinceLog++;
    const now = Date.now();
    if (now - this.#lastRefusalLog < REFUSAL_LOG_EVERY_MS) return;
    const fields = { origen: source, codigo: ErrorCode.BUSY, rechazadas: this.#refusedSinceLog, error: refusal.reason };
    this.#log.warn({ action: 'conexion', result: 'fail', ...fields });
    this.#refusedSinceLog = 0;
    this.#lastRefusalLog = now;
  }
}
