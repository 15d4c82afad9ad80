/**
 * The server's side of the proof: checks a PROOF against the agency's key (any 32 bytes pass
 * with SERVER_AUTH=off) and slows down the sources whose proofs fail (failure-throttle.ts).
 * Keys stay inside: nothing here logs or returns one.
 */
import { verifyProof } from '../../shared/auth/proof.js';
import { MAC_BYTES } from '../../shared/protocol/messages.js';
import { FailureThrottle } from '../limits/failure-throttle.js';
import type { AgencyKeys } from './keys-file.js';

export class AgencyAuth {
  readonly #keys: AgencyKeys | null;
  readonly #throttle: FailureThrottle;

  /** `keys` null: authentication is off. */
  constructor(keys: AgencyKeys | null, throttle = new FailureThrottle()) {
    this.#keys = keys;
    this.#throttle = throttle;
  }

  get enabled(): boolean {
    return this.#keys !== null;
  }

  /** Whether `mac` proves the agency's key for this challenge; constant time in the MAC's content. */
  verify(challenge: { version: number; agency: number; nonce: Buffer }, mac: Buffer): boolean {
    if (this.#keys === null) return mac.length === MAC_BYTES;
    const key = this.#keys.get(challenge.agency);
    return key !== undefined && verifyProof(key, challenge.version, challenge.agency, challenge.nonce, mac);
  }

  /** Records a failed proof from `source`; how long to hold the connection before answering it. */
  failed(source: string): number {
    return this.#throttle.fail(source);
  }
}
