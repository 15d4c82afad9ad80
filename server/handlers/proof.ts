/**
 * PROOF → WELCOME {agency, next, finished}, or ERROR AUTH_FAILED.
 *
 * The MAC must be HMAC-SHA256 of the agency's key over the CHALLENGE this connection was sent
 * (docs/protocol.md, "Authentication"); with SERVER_AUTH=off any 32 bytes pass. A failed proof
 * is logged (`autenticacion | result: fail | agencia | origen`, never the key or the MAC) and
 * answered only after the source's growing delay (failure-throttle.ts), so guessing from one
 * source gets slower with each miss.
 *
 * A valid proof binds the connection: the agency is taken over from any older connection, on
 * this server or another (which closes with ERROR REPLACED once its batch in flight is
 * answered), and claimed in the storage backend, which orders the claim after the agency's
 * batches in flight and hands out `next`: the client resumes from what is stored, and a batch
 * the old connection had in flight is DUPLICATE if sent again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeMessage } from '../../shared/protocol/codec.js';
import { ProtocolError } from '../../shared/protocol/errors.js';
import { ErrorCode, MessageType, type ProofDTO } from '../../shared/protocol/messages.js';
import { viaStorage, type SessionContext } from './context.js';

export async function handleProof(ctx: SessionContext, { mac }: ProofDTO): Promise<void> {
  const challenge = ctx.challenge;
  if (challenge === null || ctx.agency !== 0)
    throw new ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, 'PROOF without a CHALLENGE to answer; send HELLO first, once per connection');
  ctx.challenge = null;
  ctx.stopAuthDeadline();
  const { agency } = challenge;
  if (!ctx.auth.verify(challenge, mac)) {
    const holdMs = ctx.auth.failed(ctx.source);
    ctx.log.warn({ action: 'autenticacion', result: 'fail', agencia: agency, origen: ctx.source, sesion: ctx.id, espera_ms: holdMs });
    const timer = sleep(holdMs, undefined, { ref: false });
    await Promise.race([timer, ctx.closing]);
    throw new ProtocolError(
      ErrorCode.AUTH_FAILED,
      `the PROOF does not match agency ${agency}'s key; give the client that agency's key (CLI_KEY_FILE or CLI_KEY), the one in the server's SERVER_AGENCY_KEYS file`,
    );
  }
  ctx.bindAgency(agency);
  const claim = await viaStorage(ctx.registry.claim(agency, ctx));
  ctx.epoch = claim.epoch;
  ctx.finished = claim.finished;
  if (ctx.isClosing) return;
  const { next, finished } = claim;
  ctx.log.info({
    action: 'conexion',
    result: 'success',
    sesion: ctx.id,
    agencia: agency,
    origen: ctx.source,
    autenticada: ctx.auth.enabled ? 'si' : 'no',
    siguiente: next,
    terminada: finished ? 'si' : 'no',
  });
  await ctx.send(encodeMessage({ type: MessageType.WELCOME, agency, next, finished }));
}
