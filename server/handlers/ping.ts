/** PING → PONG: progress of the finished set and of the draw; allowed before HELLO (health probes). */
import { encodeMessage } from '../../shared/protocol/codec.js';
import { MessageType } from '../../shared/protocol/messages.js';
import type { SessionContext } from './context.js';

export function handlePing(ctx: SessionContext): Promise<void> {
  const { draw } = ctx;
  return ctx.send(encodeMessage({ type: MessageType.PONG, finished: draw.finished, expected: draw.expected, drawn: draw.drawn }));
}
