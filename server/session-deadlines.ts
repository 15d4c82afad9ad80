/**
 * A session's two deadlines (server/session.ts), each ending in the ERROR the session closes
 * with. Unauthenticated: a valid PROOF within `authMs` of the accept, else AUTH_TIMEOUT.
 * Authenticated: `idleMs` without a read while nothing of the peer's is being worked on, else
 * BUSY (with a short retry hint: nothing stops the agency from coming back at once).
 */
import { withRetryHint } from '../shared/net/retry-hint.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import { ErrorCode } from '../shared/protocol/messages.js';

const IDLE_RETRY_MS = 100;

/** What the session is doing when its idle deadline passes. */
export const Activity = {
  /** A batch in the pool, a query held for the draw: the server's own wait, armed again. */
  WORKING: 'working',
  /** A reply waits for the peer to read it. */
  BLOCKED: 'blocked',
  /** Nothing: the peer has sent nothing. */
  SILENT: 'silent',
} as const;
export type Activity = (typeof Activity)[keyof typeof Activity];

export class SessionDeadlines {
  readonly #authMs: number;
  readonly #idleMs: number;
  readonly #expired: (err: ProtocolError) => void;
  #authTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;

  /** Starts the auth deadline; `expired` hears the ERROR of whichever deadline passes. */
  constructor(ms: { authMs: number; idleMs: number }, expired: (err: ProtocolError) => void) {
    this.#authMs = ms.authMs;
    this.#idleMs = ms.idleMs;
    this.#expired = expired;
    this.#authTimer = setTimeout(() => {
      const text = `no valid PROOF within ${this.#authMs} ms of connecting; send HELLO, then the PROOF answering its CHALLENGE`;
      this.#expired(new ProtocolError(ErrorCode.AUTH_TIMEOUT, text));
    }, this.#authMs);
    this.#authTimer.unref();
  }

  /** The proof is in (being judged, or accepted): the auth deadline no longer applies. */
  stopAuth(): void {
    clearTimeout(this.#authTimer);
  }

  /**
   * (Re)starts the idle deadline: every read pushes it back. When it passes, `activity()`
   * says what the session is doing: WORKING arms it again; BLOCKED or SILENT expires it.
   */
  armIdle(activity: () => Activity): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      const now = activity();
      if (now === Activity.WORKING) return this.armIdle(activity);
      const why = now === Activity.BLOCKED ? 'the client has not read its replies' : 'the client has sent nothing';
      const text = `${why} for ${this.#idleMs} ms (SERVER_IDLE_TIMEOUT); connect again when there is more to send`;
      this.#expired(new ProtocolError(ErrorCode.BUSY, withRetryHint(text, IDLE_RETRY_MS)));
    }, this.#idleMs);
    this.#idleTimer.unref();
  }

  /** Both deadlines off (the session is closing). */
  clear(): void {
    clearTimeout(this.#authTimer);
    clearTimeout(this.#idleTimer);
  }
}
