/** The client program: configuration, one agency's run, graceful SIGTERM/SIGINT (started by main.ts). */
import { ConfigError, EXIT_CONFIG, describe } from '../shared/config/values.js';
import { createLogger } from '../shared/logging/logger.js';
import { AgencyClient } from './agency-client.js';
import { loadClientConfig, type ClientConfig } from './config.js';

export { warmUp } from './warm-up.js';

function loadConfig(): ClientConfig {
  try {
    return loadClientConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    createLogger({ level: 'info' }).error({ action: 'config', result: 'fail', error: err.message });
    process.exit(EXIT_CONFIG);
  }
}

export async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel }).child({});
  log.info({ action: 'config', result: 'success', ...describe(config) });
  const client = new AgencyClient(config, log);

  let stopping: Promise<void> | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== null) process.exit(1);
    log.info({ action: 'shutdown', result: 'in_progress', signal });
    stopping = client.stop().then(() => {
      log.info({ action: 'exit', result: 'success', signal });
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    const summary = await client.run();
    if (client.stopping) return; // the signal handler exits
    log.info({ action: 'exit', result: 'success', enviadas: summary.sent, rechazadas: summary.rejected, filas_invalidas: summary.badRows });
    process.exit(summary.rejected > 0 ? 1 : 0);
  } catch (err) {
    if (client.stopping) return;
    await client.stop();
    log.error({ action: 'exit', result: 'fail', error: (err as Error).message });
    process.exit(1);
  }
}
