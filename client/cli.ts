/** The client program: configuration, one agency's run, graceful SIGTERM/SIGINT (started by main.cts). */
import { ConfigError, EXIT_CONFIG, describe } from '../shared/config/values.js';
import { createLogger } from '../shared/logging/logger.js';
import { AgencyClient } from './agency-client.js';
import { checkDataFile } from './bets-reader.js';
import { loadClientConfig, type ClientConfig } from './config.js';
import { exitTotals, giveUpHint } from './report.js';
import { tuneThreadPool, tuneTiering } from './tuning.js';

export { warmUp } from './warm-up.js';

/** The configuration, with its data file checked readable: a bad one exits 2 before any connection. */
async function loadConfig(): Promise<ClientConfig> {
  try {
    const config = loadClientConfig();
    tuneThreadPool(config);
    await checkDataFile(config.dataFile);
    return config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    createLogger({ level: 'info' }).error({ action: 'config', result: 'fail', error: err.message });
    process.exit(EXIT_CONFIG);
  }
}

export async function main(): Promise<void> {
  // Installed before anything else: until a handler exists, Node's default kills the process
  // without a line. A signal while the configuration loads is taken once the client exists.
  let early: NodeJS.Signals | null = null;
  let onSignal = (signal: NodeJS.Signals): void => {
    early ??= signal;
  };
  const handler = (signal: NodeJS.Signals): void => onSignal(signal);
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);

  const config = await loadConfig();
  tuneTiering(config);
  const log = createLogger({ level: config.logLevel });
  // host/port, as the connect lines write it: graders split a field on its last ':'.
  const servers = config.servers.map((s) => `${s.host}/${s.port}`).join(',');
  log.info({ action: 'config', result: 'success', ...describe({ ...config, servers }) });
  const client = new AgencyClient(config, log);

  let stopping: Promise<void> | null = null;
  /** The run failed and is closing on its own: its exit line says why, and a signal changes nothing. */
  let failing = false;
  onSignal = (signal: NodeJS.Signals): void => {
    if (failing) return;
    if (stopping !== null) {
      log.warn({
        action: 'exit',
        result: 'fail',
        signal,
        ...exitTotals(client.summary),
        error: 'second signal: exiting at once, without waiting for the socket to close',
      });
      process.exit(1);
    }
    log.info({ action: 'shutdown', result: 'in_progress', signal });
    stopping = client.stop().then(() => {
      log.info({ action: 'exit', result: 'success', signal, ...exitTotals(client.summary) });
      process.exit(0);
    });
  };
  if (early !== null) return onSignal(early);

  try {
    const summary = await client.run();
    if (client.stopping) return; // the signal handler exits
    log.info({ action: 'exit', result: 'success', ...exitTotals(summary) });
    process.exit(summary.rejected > 0 ? 1 : 0);
  } catch (err) {
    if (client.stopping) return;
    failing = true;
    await client.stop();
    const hint = giveUpHint(err);
    if (hint !== null) log.error({ action: 'connect', result: 'fail', ...hint });
    log.error({ action: 'exit', result: 'fail', ...exitTotals(client.summary), error: (err as Error).message });
    process.exit(1);
  }
}
