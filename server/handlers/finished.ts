/**
 * FINISHED → FINISHED_ACK, once the FINISHED is on disk (a restarted server still counts it);
 * the FINISHED that completes the set starts the draw. A repeat counts once. It waits for the
 * agency's batches in the pool (Ingest.serialize), so it is recorded after all of them.
 */
import { encodeMessage } from '../../shared/protocol/codec.js';
import { MessageType, type NotificationDTO } from '../../shared/protocol/messages.js';
import { ensureOwnAgency, type SessionContext } from './context.js';

export async function handleFinished(ctx: SessionContext, { agency }: NotificationDTO): Promise<void> {
  ensureOwnAgency(ctx, agency, 'FINISHED');
  const mark = await ctx.ingest.serialize(agency, () => ctx.draw.finish(agency));
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
