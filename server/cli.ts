/** The server program: configuration, listen, and graceful shutdown on SIGTERM/SIGINT (started by main.cts). */
import type { AddressInfo } from 'node:net';
import { createLogger } from '../shared/logging/logger.js';
import { ConfigError, EXIT_CONFIG, describe } from '../shared/config/values.js';
import { loadServerConfig, type ServerConfig } from './config.js';
import { LotteryServer } from './server.js';
import { StartStoppedError, StorageConfigError } from './storage/backend.js';
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
  let signals = 0;
  /** Counts every signal; a second one exits at once. Returns whether this is the first. */
  const first = (signal: NodeJS.Signals): boolean => {
    if (++signals === 1) return true;
    log.warn({ action: 'exit', result: 'fail', signal, error: 'second signal: exiting at once without draining' });
    process.exit(1);
  };
  // Installed before the first await: until a handler exists, Node's default kills the process
  // without a line, and recovery on a large store or an unreachable database take a while. A
  // signal before the server listens stops it there: it ends a wait for the database (within
  // the connection attempt under way); the file backend's open is bounded, and the server
  // then closes without listening.
  const starting = new AbortController();
  let onSignal = (signal: NodeJS.Signals): void => {
    if (!first(signal)) return;
    log.info({ action: 'shutdown', result: 'in_progress', signal });
    starting.abort();
  };
  const handler = (signal: NodeJS.Signals): void => onSignal(signal);
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);

  let server: LotteryServer;
  let address: AddressInfo;
  try {
    server = await LotteryServer.open(config, log, starting.signal);
  } catch (err) {
    if (err instanceof StartStoppedError) {
      log.info({ action: 'exit', result: 'success', motivo: err.message });
      process.exit(0);
    }
    // RecoveryError: the files on disk cannot be trusted as they are; its message says what is
    // wrong and what to do, and no file was touched. StorageConfigError: the database holds
    // another lottery (a configuration to fix, exit 2). Anything else: the files could not be
    // opened, or the database stayed unreachable (StorageUnavailableError).
    const action = err instanceof RecoveryError ? 'recuperacion' : 'storage';
    log.error({ action, result: 'fail', error: (err as Error).message, almacen: config.storage });
    process.exit(err instanceof StorageConfigError ? EXIT_CONFIG : 1);
  }
  const shutDown = (): void => {
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
  // A signal while the server opened: close it without listening.
  if (signals > 0) return shutDown();
  try {
    address = await server.listen();
  } catch (err) {
    log.error({ action: 'listen', result: 'fail', error: (err as Error).message });
    process.exit(1);
  }
  if (signals > 0) return shutDown();
  onSignal = (signal: NodeJS.Signals): void => {
    if (!first(signal)) return;
    log.info({ action: 'shutdown', result: 'in_progress', signal });
    shutDown();
  };
  // Logged only once the handlers are installed: whoever waits for this line may signal at once.
  log.info({ action: 'listen', result: 'success', host: address.address, puerto: address.port, workers: config.workers });
}
