/**
 * The opening of a connection, protocol 2: HELLO, the server's CHALLENGE answered with a
 * PROOF, then WELCOME, which says where the agency's run resumes (`next`) and whether its
 * FINISHED is already on the server. A client without a key proves with 32 zero bytes, which
 * a server with SERVER_AUTH=off accepts (the keyed HMAC belongs to the authentication work).
 */
import { encodeMessage } from '../shared/protocol/codec.js';
import { MAC_BYTES, MessageType, PROTOCOL_VERSION, type WelcomeDTO } from '../shared/protocol/messages.js';
import type { Connection } from './connection.js';

const NO_KEY_PROOF = Buffer.alloc(MAC_BYTES);

export async function handshake(conn: Connection, agency: number): Promise<WelcomeDTO> {
  await conn.send(encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency }));
  await conn.expect(MessageType.CHALLENGE);
  await conn.send(encodeMessage({ type: MessageType.PROOF, mac: NO_KEY_PROOF }));
  return conn.expect(MessageType.WELCOME);
}
