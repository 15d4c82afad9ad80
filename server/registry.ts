/**
 * Which session holds which agency (main thread only). One live session per agency: with
 * frames handled in order within a session, an agency's batches are stored in the order it
 * sent them and none is in flight when its FINISHED is counted.
 *
 * Takeover: binding an agency that another session holds replaces that session (it is told
 * through `replaced()` and closes itself, after its batch in the pool is acknowledged, with
 * ERROR REPLACED). Only a session that proved the agency's key binds, so only the agency can
 * take itself over: a reconnecting agency is never locked out by its own half-open connection.
 * The new session reads where to resume only once the old one's run has left the pool
 * (Ingest.settled), so the two never store for the agency at the same time.
 */
import { ProtocolError } from '../shared/protocol/errors.js';
import { ErrorCode } from '../shared/protocol/messages.js';

/** HELLO named an agency this server does not take. */
class UnknownAgencyError extends ProtocolError {
  constructor(message: string) {
    super(ErrorCode.UNKNOWN_AGENCY, message);
  }
}

/** A session as the registry sees it: it can be told a newer session took its agency over. */
export interface AgencyOwner {
  replaced(): void;
}

export class AgencyRegistry {
  readonly #agencies: number;
  readonly #owners = new Map<number, AgencyOwner>();

  /** Takes agencies 1 to `agencies`. */
  constructor(agencies: number) {
    this.#agencies = agencies;
  }

  /** Throws UNKNOWN_AGENCY unless this server takes `agency`. */
  check(agency: number): void {
    if (!Number.isInteger(agency) || agency < 1 || agency > this.#agencies) {
      throw new UnknownAgencyError(`agency ${agency} is unknown: this server takes agencies 1 to ${this.#agencies}`);
    }
  }

  /**
   * Binds `agency` to `owner` until it unbinds; binding again to the same owner is a no-op.
   * An earlier owner is replaced: told so, and it frees nothing when it unbinds later.
   */
  bind(agency: number, owner: AgencyOwner): void {
    this.check(agency);
    const current = this.#owners.get(agency);
    this.#owners.set(agency, owner);
    if (current !== undefined && current !== owner) current.replaced();
  }

  /** Frees `agency` if `owner` holds it (a stale owner frees nothing). */
  unbind(agency: number, owner: AgencyOwner): void {
    if (this.#owners.get(agency) === owner) this.#owners.delete(agency);
  }
}
