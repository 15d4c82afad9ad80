/**
 * Build time only (tools/bundle.ts): runs the client's code once so that the bundle's code
 * cache holds its bytecode and a client start compiles none of it again: the pure parts —
 * configuration and YAML, the logger, the row decoder and its csv-parse path, batches, the
 * codec — then one whole run over loopback (warm-up-run.ts). No handler installed, nothing
 * printed, nothing left behind.
 */
import { createLogger } from '../shared/logging/logger.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { MessageType, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { loadClientConfig } from './config.js';
import { AgencyRowDecoder } from './row-decoder.js';
import { warmUpRun } from './warm-up-run.js';

const ROWS = 'Ana,Paz,30111222,1990-01-02,7574\r\n  José , Pérez ,1,2000-02-29,0042\n"Eva, M",Luna,2,1990-01-02,2\r\n\r\nbad,row\n';

export async function warmUp(): Promise<void> {
  // client/config.yaml when the build runs from the repository root, the defaults otherwise.
  const config = loadClientConfig({ CLI_ID: '1' });
  const log = createLogger({ level: 'info', format: 'text', destination: { write: () => true } }).child({});
  log.info({ action: 'config', result: 'success', id: config.id });
  const decoder = new AgencyRowDecoder(config.id, (line, error) =>
    log.warn({ action: 'apuesta_invalida', result: 'fail', linea: line, error }),
  );
  const rows = Buffer.from(ROWS);
  for (let i = 0; i < 3; i++) decoder.push(rows);
  decoder.end();
  const builder = new BatchBuilder(config.maxAmount);
  builder.addEncoded(decoder.take(), 0);
  const frames = [
    builder.take(1),
    encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: config.id }),
    encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: config.id }),
    encodeMessage({ type: MessageType.WINNERS_QUERY, agency: config.id }),
    encodeMessage({ type: MessageType.FINISHED_ACK, finished: 1, expected: 5 }),
    encodeMessage({ type: MessageType.WINNERS, last: true, documents: ['30111222'] }),
  ];
  for (const frame of new FrameDecoder().push(Buffer.concat(frames))) decodeMessage(frame);
  await warmUpRun(config, log);
}
