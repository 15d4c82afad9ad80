/**
 * What a message handler may use: the session's side (its agency, send, a signal that it is
 * closing) and the server-wide objects every session shares. Handlers run on the main thread,
 * one frame at a time per session.
 */
import type { Logger } from '../../shared/logging/logger.js';
import { withRetryHint } from '../../shared/net/retry-hint.js';
import { ProtocolError } from '../../shared/protocol/errors.js';
import { ErrorCode } from '../../shared/protocol/messages.js';
import type { AgencyAuth } from '../auth/agency-auth.js';
import type { Draw } from '../draw.js';
import type { Ingest } from '../ingest.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import type { AgencyOwner, AgencyRegistry } from '../registry.js';
import { StorageUnavailableError } from '../storage/backend.js';

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
  /** The epoch of the session's claim of its agency (set at the PROOF); 0 before. Its batches and FINISHED carry it. */
  epoch: number;
  /** The agency's FINISHED is stored (WELCOME said so, or this session sent it): a WINNERS_QUERY is held for the draw. */
  finished: boolean;
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

/** How long a client is asked to wait before reconnecting while the storage is unreachable. */
const STORAGE_RETRY_MS = 1000;

/**
 * A storage call as a handler makes it: a storage that stays unreachable past the backend's
 * own retries (StorageUnavailableError) closes the session with ERROR BUSY and a retry hint,
 * so the client reconnects (to this server or another) and resumes from WELCOME's `next`;
 * nothing unacknowledged was stored, or a retry of it is DUPLICATE.
 */
export async function viaStorage<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (!(err instanceof StorageUnavailableError)) throw err;
    throw new ProtocolError(ErrorCode.BUSY, withRetryHint(`storage unavailable: ${err.message}`, STORAGE_RETRY_MS));
  }
}
