/**
 * The proof of protocol version 2 (docs/protocol.md, "Authentication"): after HELLO the server
 * sends a fresh 32-byte nonce; the client answers with
 *   HMAC-SHA256(key, "loteria-proof-v2" | version u16 BE | agency u32 BE | nonce)
 * Binding the version and the agency means a proof for one agency or version proves nothing
 * for another; the nonce is fresh per connection, so a recorded proof never verifies again.
 */
import { MAC_BYTES, NONCE_BYTES } from '../protocol/messages.js';
import { nodeCrypto } from '../util/lazy-builtin.js';
import type { AgencyKey } from './agency-key.js';

export const PROOF_LABEL = 'loteria-proof-v2';
/** What a client without a key sends; only a server with SERVER_AUTH=off accepts it. */
export const NO_KEY_PROOF: Buffer = Buffer.alloc(MAC_BYTES);

const LABEL = Buffer.from(PROOF_LABEL, 'ascii');

/** A fresh random challenge, one per connection. */
export function newNonce(): Buffer {
  return nodeCrypto().randomBytes(NONCE_BYTES);
}

function checkNonce(nonce: Uint8Array): void {
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`a nonce is ${NONCE_BYTES} bytes, got ${nonce.length}`);
}

export function computeProof(key: AgencyKey, version: number, agency: number, nonce: Uint8Array): Buffer {
  checkNonce(nonce);
  const head = Buffer.alloc(6);
  head.writeUInt16BE(version, 0);
  head.writeUInt32BE(agency, 2);
  return nodeCrypto().createHmac('sha256', key.bytes).update(LABEL).update(head).update(nonce).digest();
}

/** Constant-time comparison of `mac` with the expected proof; a MAC of the wrong size is false. */
export function verifyProof(key: AgencyKey, version: number, agency: number, nonce: Uint8Array, mac: Uint8Array): boolean {
  const expected = computeProof(key, version, agency, nonce);
  // The size is public (always 32 on the wire); only the content needs constant time.
  return mac.length === expected.length && nodeCrypto().timingSafeEqual(expected, mac);
}
