/**
 * Which session holds which agency (main thread only). One live session per agency: with
 * frames handled in order within a session, an agency's batches are stored in the order it
 * sent them and none is in flight when its FINISHED is counted.
 */
import { ProtocolError } from '../shared/protocol/errors.js';
import { ErrorCode } from '../shared/protocol/messages.js';

/** HELLO named an agency this server does not take, or one another connection holds. */
class AgencyRefusedError extends ProtocolError {
  constructor(code: typeof ErrorCode.UNKNOWN_AGENCY | typeof ErrorCode.AGENCY_BUSY, message: string) {
    super(code, message);
  }
}

export class AgencyRegistry {
  readonly #agencies: number;
  readonly #owners = new Map<number, object>();

  /** Takes agencies 1 to `agencies`. */
  constructor(agencies: number) {
    this.#agencies = agencies;
  }

  /** Throws UNKNOWN_AGENCY unless this server takes `agency`. */
  check(agency: number): void {
    if (!Number.isInteger(agency) || agency < 1 || agency > this.#agencies) {
      throw new AgencyRefusedError(
        ErrorCode.UNKNOWN_AGENCY,
        `agency ${agency} is unknown: this server takes agencies 1 to ${this.#agencies}`,
      );
    }
  }

  /** Binds `agency` to `owner` (a session) until it unbinds; binding again to the same owner is a no-op. */
  bind(agency: number, owner: object): void {
    this.check(agency);
    const current = this.#owners.get(agency);
    if (current !== undefined && current !== owner) {
      throw new AgencyRefusedError(
        ErrorCode.AGENCY_BUSY,
        `agency ${agency} is already connected; close the other connection or retry later`,
      );
    }
    this.#owners.set(agency, owner);
  }

  /** Frees `agency` if `owner` holds it (a stale owner frees nothing). */
  unbind(agency: number, owner: object): void {
    if (this.#owners.get(agency) === owner) this.#owners.delete(agency);
  }
}
