/** The server program: configuration, listen, and graceful shutdown on SIGTERM/SIGINT (started by main.cts). */
import type { AddressInfo } from 'node:net';
import { createLogger } from '../shared/logging/logger.js';
import { ConfigError, EXIT_CONFIG, describe } from '../shared/config/values.js';
import { loadServerConfig, type ServerConfig } from './config.js';
import { LotteryServer } from './server.js';
import { StorageConfigError } from './storage/backend.js';
import { RecoveryError } from './storage/durable-state.js';

export { warmUp } from './warm-up.js';

export async function main(): Promise<void> {
  let config: ServerConfig;
  try {
    config = loadServerConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    createLogger({ level: process.env.LOGGING_LEVEL ?? 'info' }).error({ action: 'config', result: 'fail', error: err.message });
    process.exit(EXIT_CONFIG);
  }
  const log = createLogger({ level: config.logLevel });
  log.info({ action: 'config', result: 'success', ...describe(config) });
  if (config.auth === 'off')
    log.warn({
      action: 'autenticacion',
      result: 'success',
      modo: 'off',
      aviso: 'SERVER_AUTH=off - any peer can act for any agency; use it only for a local test',
    });

  let server: LotteryServer;
  let address: AddressInfo;
  try {
    server = await LotteryServer.open(config, log);
  } catch (err) {
    // RecoveryError: the files on disk cannot be trusted as they are; its message says what is
    // wrong and what to do, and no file was touched. StorageConfigError: the database holds
    // another lottery (a configuration to fix, exit 2). Anything else: the files could not be
    // opened, or the database stayed unreachable (StorageUnavailableError).
    const action = err instanceof RecoveryError ? 'recuperacion' : 'storage';
    log.error({ action, result: 'fail', error: (err as Error).message, almacen: config.storage });
    process.exit(err instanceof StorageConfigError ? EXIT_CONFIG : 1);
  }
  try {
    address = await server.listen();
  } catch (err) {
    log.error({ action: 'listen', result: 'fail', error: (err as Error).message });
    process.exit(1);
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals > 1) {
      log.warn({ action: 'exit', result: 'fail', signal, error: 'second signal: exiting at once without draining' });
      process.exit(1);
    }
    log.info({ action: 'shutdown', result: 'in_progress', signal });
    server.close().then(
      () => {
        log.info({ action: 'exit', result: 'success' });
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ action: 'exit', result: 'fail', error: (err as Error).message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Logged only once the handlers are installed: whoever waits for this line may signal at once.
  log.info({ action: 'listen', result: 'success', host: address.address, puerto: address.port, workers: config.workers });
}
