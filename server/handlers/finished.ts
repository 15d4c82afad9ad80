/**
 * FINISHED → FINISHED_ACK, once the FINISHED is stored (a restarted server still counts it);
 * the FINISHED that completes the set starts the draw. A repeat counts once. The backend
 * records it after every batch of the agency in flight; a newer session of the agency
 * (REPLACED) makes it record nothing, and this session closes with ERROR REPLACED.
 */
import { encodeMessage } from '../../shared/protocol/codec.js';
import { MessageType, type NotificationDTO } from '../../shared/protocol/messages.js';
import { ensureOwnAgency, viaStorage, type SessionContext } from './context.js';

export async function handleFinished(ctx: SessionContext, { agency }: NotificationDTO): Promise<void> {
  ensureOwnAgency(ctx, agency, 'FINISHED');
  const mark = await viaStorage(ctx.draw.finish(agency, ctx.epoch));
  if (mark.replaced) return ctx.replaced();
  ctx.finished = true;
  ctx.log.info({
    action: 'notificacion',
    result: 'success',
    agencia: agency,
    terminadas: mark.finished,
    esperadas: mark.expected,
    ...(mark.counted ? {} : { repetida: 'si' }),
  });
  await ctx.send(encodeMessage({ type: MessageType.FINISHED_ACK, finished: mark.finished, expected: mark.expected }));
}
