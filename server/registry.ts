/**
 * Which session holds which agency (main thread only), and the takeover rule across servers:
 * the newest authenticated session of an agency wins, wherever it connected.
 *
 * On this server, binding an agency that another session holds replaces that session at once
 * (it is told through `replaced()` and closes itself, after its batch in flight is answered,
 * with ERROR REPLACED). Then the new session claims the agency in the storage backend
 * (`claim`): a new epoch, ordered after every batch of the agency in flight (the file
 * backend's per-agency chain, PostgreSQL's row lock), and the `next` WELCOME hands out. A
 * claim made on another server reaches this one through the backend's `onReplaced`: the
 * session holding an older epoch here is replaced the same way. Whatever an older session
 * still sends carries its old epoch, and the backend stores none of it (REPLACED): so a
 * session that missed the news cannot write for the agency any more.
 *
 * Only a session that proved the agency's key binds, so only the agency can take itself over.
 */
import type { Logger } from '../shared/logging/logger.js';
import { KeyedChain } from '../shared/util/async.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import { ErrorCode } from '../shared/protocol/messages.js';
import type { AgencyClaim, StorageBackend } from './storage/backend.js';

/** HELLO named an agency this server does not take. */
class UnknownAgencyError extends ProtocolError {
  constructor(message: string) {
    super(ErrorCode.UNKNOWN_AGENCY, message);
  }
}

/** A session as the registry sees it: it can be told a newer session took its agency over. */
export interface AgencyOwner {
  replaced(): void;
  /** True once the owner's connection is closing: it claims nothing more. */
  readonly isClosing?: boolean;
}

export type ClaimBackend = Pick<StorageBackend, 'agencies' | 'claim' | 'release' | 'onReplaced'>;

interface Holding {
  readonly owner: AgencyOwner;
  /** The owner's claim's epoch; 0 while its claim is in flight. */
  epoch: number;
}

export class AgencyRegistry {
  readonly #backend: ClaimBackend;
  readonly #log: Logger | undefined;
  readonly #held = new Map<number, Holding>();
  /** The newest epoch heard of per agency (from any server), so a claim that lost a race is replaced on return. */
  readonly #newest = new Map<number, number>();
  readonly #releases = new Set<Promise<void>>();
  /** Per agency: its claims, one at a time. */
  readonly #claims = new KeyedChain<number>();

  constructor(backend: ClaimBackend, log?: Logger) {
    this.#backend = backend;
    this.#log = log;
    backend.onReplaced((agency, epoch) => this.#heard(agency, epoch));
  }

  /** Throws UNKNOWN_AGENCY unless this server takes `agency`. */
  check(agency: number): void {
    const agencies = this.#backend.agencies;
    if (!Number.isInteger(agency) || agency < 1 || agency > agencies) {
      throw new UnknownAgencyError(`agency ${agency} is unknown: this server takes agencies 1 to ${agencies}`);
    }
  }

  /**
   * Binds `agency` to `owner` until it unbinds; binding again to the same owner is a no-op.
   * An earlier owner here is replaced: told so, and it frees nothing when it unbinds later.
   */
  bind(agency: number, owner: AgencyOwner): void {
    this.check(agency);
    const current = this.#held.get(agency);
    if (current?.owner === owner) return;
    this.#held.set(agency, { owner, epoch: 0 });
    current?.owner.replaced();
  }

  /**
   * Claims the bound agency in the backend for `owner`: its epoch, and where it resumes.
   * Claims of one agency go to the backend one at a time, in bind order, and only for an
   * owner that still holds the agency: the backend numbers epochs in commit order, so two
   * claims in flight at once could commit in reverse, and a claim of an owner already gone
   * (replaced, or its connection closed) would take the agency from the session that holds it
   * now, here or on another server.
   */
  claim(agency: number, owner: AgencyOwner): Promise<AgencyClaim> {
    return this.#claims.run(agency, () => this.#claimHeld(agency, owner));
  }

  async #claimHeld(agency: number, owner: AgencyOwner): Promise<AgencyClaim> {
    if (this.#held.get(agency)?.owner !== owner)
      throw new ProtocolError(ErrorCode.REPLACED, `agency ${agency} was taken over by a newer connection before this one was claimed`);
    if (owner.isClosing === true)
      throw new ProtocolError(ErrorCode.SHUTTING_DOWN, `the connection of agency ${agency} closed before its claim`);
    const claim = await this.#backend.claim(agency);
    const holding = this.#held.get(agency);
    if (holding?.owner === owner) {
      holding.epoch = claim.epoch;
      // A newer claim (another server's) was heard while this one was in flight.
      if ((this.#newest.get(agency) ?? 0) > claim.epoch) this.#replace(agency, holding);
    } else {
      // The owner was replaced while its claim was in flight: nobody will release this epoch
      // but here (the backend ignores it once a newer claim exists).
      this.#release(agency, claim.epoch);
    }
    return claim;
  }

  /** Frees `agency` if `owner` holds it (a stale owner frees nothing); its claim is released in the backend. */
  unbind(agency: number, owner: AgencyOwner): void {
    const holding = this.#held.get(agency);
    if (holding?.owner !== owner) return;
    this.#held.delete(agency);
    if (holding.epoch > 0) this.#release(agency, holding.epoch);
  }

  /** Settles once the releases in flight have (shutdown waits for them before closing the backend). */
  async released(): Promise<void> {
    await Promise.all(this.#releases);
  }

  #release(agency: number, epoch: number): void {
    const done = this.#backend.release(agency, epoch).catch((err: unknown) => {
      this.#log?.warn({ action: 'liberar_agencia', result: 'fail', agencia: agency, error: (err as Error).message });
    });
    this.#releases.add(done);
    void done.then(() => this.#releases.delete(done));
  }

  #heard(agency: number, epoch: number): void {
    if (epoch > (this.#newest.get(agency) ?? 0)) this.#newest.set(agency, epoch);
    const holding = this.#held.get(agency);
    // Epoch 0: its own claim is in flight; claim() compares once it knows the epoch.
    if (holding !== undefined && holding.epoch !== 0 && holding.epoch < epoch) this.#replace(agency, holding);
  }

  #replace(agency: number, holding: Holding): void {
    this.#held.delete(agency);
    holding.owner.replaced();
  }
}
