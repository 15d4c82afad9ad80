/** HELLO → WELCOME with the last stored `seq`: binds the connection to one agency. */
import { encodeMessage } from '../../shared/protocol/codec.js';
import { ProtocolError } from '../../shared/protocol/errors.js';
import { ErrorCode, MessageType, PROTOCOL_VERSION, type HelloDTO } from '../../shared/protocol/messages.js';
import type { SessionContext } from './context.js';

export function handleHello(ctx: SessionContext, { version, agency }: HelloDTO): Promise<void> {
  if (version !== PROTOCOL_VERSION)
    throw new ProtocolError(
      ErrorCode.BAD_VERSION,
      `protocol version ${version} is not supported; this server speaks version ${PROTOCOL_VERSION}`,
    );
  if (ctx.agency !== 0)
    throw new ProtocolError(
      ErrorCode.ALREADY_BOUND,
      `this connection is already bound to agency ${ctx.agency}; open a new connection for another agency`,
    );
  ctx.bindAgency(agency);
  const lastSeq = ctx.ingest.lastStored(agency);
  ctx.log.info({ action: 'conexion', result: 'success', sesion: ctx.id, agencia: agency, ultimo_lote: lastSeq });
  return ctx.send(encodeMessage({ type: MessageType.WELCOME, agency, lastSeq }));
}
