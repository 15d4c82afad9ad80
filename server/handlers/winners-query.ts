/**
 * WINNERS_QUERY → WINNERS (one or more frames) or NOT_READY.
 *
 * A finished agency's query is held until the draw's next outcome (the answer goes out the
 * moment the winners are known, on whichever server the draw ran: the backend wakes it, no
 * polling); frames behind it wait, and closing the session releases it. An agency that has not sent FINISHED would wait on itself: it hears NOT_READY
 * at once, as does a held query whose draw failed (winners() starts the draw again; the
 * client asks again).
 */
import { encodeMessage, encodeWinnersFrames } from '../../shared/protocol/codec.js';
import { MessageType, type WinnersQueryDTO } from '../../shared/protocol/messages.js';
import { ensureOwnAgency, viaStorage, type SessionContext } from './context.js';

export async function handleWinnersQuery(ctx: SessionContext, { agency }: WinnersQueryDTO): Promise<void> {
  ensureOwnAgency(ctx, agency, 'WINNERS_QUERY');
  const { draw } = ctx;
  let answer = await viaStorage(draw.winners(agency));
  if (!answer.ready && ctx.finished) {
    await Promise.race([draw.nextOutcome(), ctx.closing]);
    if (ctx.isClosing) return;
    answer = await viaStorage(draw.winners(agency));
  }
  if (!answer.ready) return ctx.send(encodeMessage({ type: MessageType.NOT_READY, finished: answer.finished, expected: answer.expected }));
  // At DEBUG the line names the winners (their DNIs); at INFO it only counts them.
  const documentos = ctx.log.isLevelEnabled('debug') ? { documentos: answer.documents.join(',') || '-' } : {};
  ctx.log.info({
    action: 'consulta_ganadores',
    result: 'success',
    agencia: agency,
    cant_ganadores: answer.documents.length,
    ...documentos,
  });
  for (const frame of encodeWinnersFrames(answer.documents)) await ctx.send(frame);
}
