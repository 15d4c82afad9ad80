/**
 * Build time only (tools/bundle.ts): runs the client's code once so that the bundle's code
 * cache holds its bytecode and a client start compiles none of it again: one whole run over
 * loopback (warm-up-run.ts: connection, handshake, batches, the codec, the winners query), then
 * what that run's plain rows leave out — client/config.yaml's YAML, the row decoder's csv-parse
 * path and its bad-row reports. No handler installed, nothing printed, nothing left behind.
 */
import { createLogger } from '../shared/logging/logger.js';
import { loadClientConfig } from './config.js';
import { AgencyRowDecoder } from './row-decoder.js';
import { warmUpRun } from './warm-up-run.js';

const ROWS = 'Ana,Paz,30111222,1990-01-02,7574\r\n  José , Pérez ,1,2000-02-29,0042\n"Eva, M",Luna,2,1990-01-02,2\r\n\r\nbad,row\n';

/** Resolves with the winners of the whole run. */
export async function warmUp(): Promise<string[]> {
  const log = createLogger({ level: 'info', format: 'text', destination: { write: () => true } }).child({});
  const winners = await warmUpRun(log);
  // client/config.yaml when the build runs from the repository root, the defaults otherwise.
  const config = loadClientConfig({ CLI_ID: '1' });
  log.info({ action: 'config', result: 'success', id: config.id });
  const decoder = new AgencyRowDecoder(config.id, (line, error) =>
    log.warn({ action: 'apuesta_invalida', result: 'fail', linea: line, error }),
  );
  const rows = Buffer.from(ROWS);
  for (let i = 0; i < 3; i++) decoder.push(rows);
  decoder.end();
  return winners;
}
