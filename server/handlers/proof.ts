/**
 * PROOF → WELCOME {agency, next, finished}: binds the connection to the agency named in its
 * HELLO, and tells the client where to resume: `next` (bets of the agency the server holds
 * durably) and whether its FINISHED is on disk. `next` is read once no batch of the agency is
 * in the pool (a connection that took over from another waits for that one's run).
 *
 * Authentication is not checked yet: any 32-byte mac is accepted, as with SERVER_AUTH=off
 * (the HMAC check belongs to the authentication work, docs/protocol.md).
 */
import { encodeMessage } from '../../shared/protocol/codec.js';
import { ProtocolError } from '../../shared/protocol/errors.js';
import { ErrorCode, MessageType, type ProofDTO } from '../../shared/protocol/messages.js';
import type { SessionContext } from './context.js';

export async function handleProof(ctx: SessionContext, _proof: ProofDTO): Promise<void> {
  const challenge = ctx.challenge;
  if (challenge === null || ctx.agency !== 0)
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, 'PROOF without a CHALLENGE to answer; send HELLO first, once per connection');
  ctx.challenge = null;
  ctx.bindAgency(challenge.agency);
  const { agency } = challenge;
  await ctx.ingest.settled(agency);
  const next = ctx.ingest.next(agency);
  const finished = ctx.draw.hasFinished(agency);
  ctx.log.info({
    action: 'conexion',
    result: 'success',
    sesion: ctx.id,
    agencia: agency,
    siguiente: next,
    terminada: finished ? 'si' : 'no',
  });
  await ctx.send(encodeMessage({ type: MessageType.WELCOME, agency, next, finished }));
}
