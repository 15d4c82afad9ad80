/**
 * A run of BATCH frames (one, or several queued back to back) → one BATCH_ACK per batch, in
 * order, all in one write. A batch is acknowledged only once the storage backend has made it
 * durable (ingest.ts). A run the backend refused as REPLACED (a newer session of the agency
 * claimed it, here or on another server) stored nothing: no ack, the session closes with
 * ERROR REPLACED.
 */
import { encodeMessage } from '../../shared/protocol/codec.js';
import { AckStatus, type BatchAckDTO, type BatchDTO } from '../../shared/protocol/messages.js';
import { viaStorage, type SessionContext } from './context.js';

export async function handleBatches(ctx: SessionContext, run: readonly BatchDTO[]): Promise<void> {
  const admitted = await viaStorage(ctx.ingest.admit(ctx.agency, ctx.epoch, run));
  if (admitted.replaced) return ctx.replaced();
  const { acks } = admitted;
  acks.forEach((ack, i) => {
    logAck(ctx, run[i]!, ack);
  });
  await ctx.send(Buffer.concat(acks.map((ack) => encodeMessage(ack))));
  ctx.metrics?.acked(acks, ctx.receivedAt);
}

function logAck(ctx: SessionContext, batch: BatchDTO, ack: BatchAckDTO): void {
  const fields = { cantidad: batch.count, agencia: ctx.agency, lote: batch.first };
  if (ack.status === AckStatus.REJECTED) {
    ctx.log.warn({ action: 'apuesta_recibida', result: 'fail', ...fields, indice: ack.index, error: ack.reason });
  } else if (ack.status === AckStatus.OUT_OF_ORDER) {
    ctx.log.warn({ action: 'apuesta_fuera_de_orden', result: 'fail', ...fields, siguiente: ack.next });
  } else {
    // A retransmission gets its own action, so that summing apuesta_recibida counts each bet once.
    ctx.log.info({
      action: ack.status === AckStatus.DUPLICATE ? 'apuesta_duplicada' : 'apuesta_recibida',
      result: 'success',
      ...fields,
    });
  }
}
