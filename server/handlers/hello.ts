/**
 * HELLO → CHALLENGE: checks the version and that the agency is one this server takes, then
 * sends a fresh nonce; the connection is bound once the PROOF is accepted (proof.ts).
 */
import { randomBytes } from 'node:crypto';
import { encodeMessage } from '../../shared/protocol/codec.js';
import { ProtocolError } from '../../shared/protocol/errors.js';
import { ErrorCode, MessageType, NONCE_BYTES, PROTOCOL_VERSION, type HelloDTO } from '../../shared/protocol/messages.js';
import type { SessionContext } from './context.js';

export function handleHello(ctx: SessionContext, { version, agency }: HelloDTO): Promise<void> {
  if (version !== PROTOCOL_VERSION)
    throw new ProtocolError(
      ErrorCode.BAD_VERSION,
      `protocol version ${version} is not supported; this server speaks version ${PROTOCOL_VERSION}: update the client`,
    );
  if (ctx.agency !== 0 || ctx.challenge !== null)
    throw new ProtocolError(
      ErrorCode.ALREADY_BOUND,
      `this connection already said HELLO for agency ${ctx.agency || ctx.challenge?.agency}; open a new connection for another agency`,
    );
  ctx.registry.check(agency);
  const nonce = randomBytes(NONCE_BYTES);
  ctx.challenge = { version, agency, nonce };
  return ctx.send(encodeMessage({ type: MessageType.CHALLENGE, nonce }));
}
