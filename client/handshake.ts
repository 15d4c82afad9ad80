/**
 * The opening of a connection, protocol 2: HELLO, the server's CHALLENGE answered with a
 * PROOF (HMAC-SHA256 of the agency's key over the challenge, shared/auth/proof.ts), then
 * WELCOME, which says where the agency's run resumes (`next`) and whether its FINISHED is
 * already on the server. A client without a key proves with 32 zero bytes, which only a
 * server with SERVER_AUTH=off accepts.
 */
import type { AgencyKey } from '../shared/auth/agency-key.js';
import { NO_KEY_PROOF, computeProof } from '../shared/auth/proof.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { ErrorCode, MessageType, PROTOCOL_VERSION, type WelcomeDTO } from '../shared/protocol/messages.js';
import type { Connection } from './connection.js';
import { ServerRefusedError } from './errors.js';

export async function handshake(conn: Connection, agency: number, key: AgencyKey | null): Promise<WelcomeDTO> {
  await conn.send(encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency }));
  try {
    const { nonce } = await conn.expect(MessageType.CHALLENGE);
    const mac = key === null ? NO_KEY_PROOF : computeProof(key, PROTOCOL_VERSION, agency, nonce);
    await conn.send(encodeMessage({ type: MessageType.PROOF, mac }));
    return await conn.expect(MessageType.WELCOME);
  } catch (err) {
    if (key === null && err instanceof ServerRefusedError && err.code === ErrorCode.AUTH_FAILED)
      throw new ServerRefusedError(
        err.code,
        `${err.message.replace(/^server error \d+: /, '')} (this client has no key: set CLI_KEY_FILE, auth.keyFile or CLI_KEY)`,
      );
    throw err;
  }
}
