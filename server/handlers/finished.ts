/** FINISHED → FINISHED_ACK; the FINISHED that completes the set starts the draw. A repeat counts once. */
import { encodeMessage } from '../../shared/protocol/codec.js';
import { MessageType, type NotificationDTO } from '../../shared/protocol/messages.js';
import { ensureOwnAgency, type SessionContext } from './context.js';

export function handleFinished(ctx: SessionContext, { agency }: NotificationDTO): Promise<void> {
  ensureOwnAgency(ctx, agency, 'FINISHED');
  const mark = ctx.draw.finish(agency);
  ctx.log.info({
    action: 'notificacion',
    result: 'success',
    agencia: agency,
    terminadas: mark.finished,
    esperadas: mark.expected,
    ...(mark.counted ? {} : { repetida: 'si' }),
  });
  return ctx.send(encodeMessage({ type: MessageType.FINISHED_ACK, finished: mark.finished, expected: mark.expected }));
}
