/** PING → PONG: progress of the finished set and of the draw; allowed before HELLO (health probes). */
import { encodeMessage } from '../../shared/protocol/codec.js';
import { MessageType } from '../../shared/protocol/messages.js';
import { viaStorage, type SessionContext } from './context.js';

export async function handlePing(ctx: SessionContext): Promise<void> {
  const { finished, expected, drawn } = await viaStorage(ctx.draw.progress());
  return ctx.send(encodeMessage({ type: MessageType.PONG, finished, expected, drawn }));
}
