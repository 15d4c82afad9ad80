/**
 * What a message handler may use: the session's side (its agency, send, a signal that it is
 * closing) and the server-wide objects every session shares. Handlers run on the main thread,
 * one frame at a time per session.
 */
import type { Logger } from '../../shared/logging/logger.js';
import { ProtocolError } from '../../shared/protocol/errors.js';
import { ErrorCode } from '../../shared/protocol/messages.js';
import type { AgencyAuth } from '../auth/agency-auth.js';
import type { Draw } from '../draw.js';
import type { Ingest } from '../ingest.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import type { AgencyOwner, AgencyRegistry } from '../registry.js';

/** The server-wide state, shared by every session. */
export interface Services {
  readonly ingest: Ingest;
  readonly draw: Draw;
  readonly registry: AgencyRegistry;
  readonly auth: AgencyAuth;
  /** The figures served on /metrics (absent in tests that do not look at them). */
  readonly metrics?: ServerMetrics;
}

export interface SessionContext extends Services, AgencyOwner {
  readonly id: number;
  /** The peer's source as the per-source limits count it (IPv4 address, IPv6 /64): `origen` in the logs. */
  readonly source: string;
  /** The agency this connection is bound to; 0 until its PROOF is accepted. */
  readonly agency: number;
  /** The CHALLENGE sent in reply to HELLO, until the PROOF answers it. */
  challenge: { version: number; agency: number; nonce: Buffer } | null;
  readonly log: Logger;
  /** The PROOF is being judged: the unauthenticated deadline no longer applies. */
  stopAuthDeadline(): void;
  /**
   * After a valid PROOF: moves the connection to the authenticated budget (ERROR BUSY when
   * that is full), takes the agency over in the registry, and binds the session to it.
   */
  bindAgency(agency: number): void;
  /** Writes a frame, waiting for 'drain' when the stream asks for it; a closed stream drops it. */
  send(frame: Buffer): Promise<void>;
  /** Settles as the session begins closing: a held reply stops waiting. */
  readonly closing: Promise<void>;
  readonly isClosing: boolean;
  /** When the frame being handled was read off the stream (performance.now()): the ack latency counts from there. */
  readonly receivedAt: number;
}

/** A message about `agency` must come from the connection bound to it. */
export function ensureOwnAgency(ctx: SessionContext, agency: number, what: string): void {
  if (agency !== ctx.agency) {
    throw new ProtocolError(ErrorCode.WRONG_AGENCY, `${what} for agency ${agency} on a connection bound to agency ${ctx.agency}`);
  }
}
