/**
 * Client configuration: `client/config.yaml` (the course's keys), each key overridden by
 * CLI_<PATH> with dots removed and upper-cased: `batch.maxAmount` -> CLI_BATCH_MAXAMOUNT.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, durationMs, hostPort, intIn, layered, logLevel, nonEmpty } from '../shared/config/values.js';

export interface ClientConfig {
  id: number;
  host: string;
  port: number;
  /** How long to keep retrying the first connection while the server is not up. */
  connectTimeoutMs: number;
  /** How long to keep trying to reconnect, once connected, after losing the server (it restarts). */
  reconnectTimeoutMs: number;
  maxAmount: number;
  logLevel: string;
  /** How long to wait for the winners after FINISHED (the server holds the query until the draw). */
  winnersTimeoutMs: number;
  dataFile: string;
}

const DEFAULT_CLIENT_CONFIG_PATH = 'client/config.yaml';

const KEYS = {
  id: 'CLI_ID',
  'server.address': 'CLI_SERVER_ADDRESS',
  'server.connectTimeout': 'CLI_SERVER_CONNECTTIMEOUT',
  'server.reconnectTimeout': 'CLI_SERVER_RECONNECTTIMEOUT',
  'batch.maxAmount': 'CLI_BATCH_MAXAMOUNT',
  'log.level': 'CLI_LOG_LEVEL',
  'winners.timeout': 'CLI_WINNERS_TIMEOUT',
  'data.file': 'CLI_DATA_FILE',
} as const;
type Key = keyof typeof KEYS;

const DEFAULTS: Partial<Record<Key, string>> = {
  'server.address': '127.0.0.1:12345',
  'server.connectTimeout': '30s',
  'server.reconnectTimeout': '60s',
  'batch.maxAmount': '150',
  'log.level': 'INFO',
  'winners.timeout': '120s',
};

function readYaml(path: string, required: boolean): unknown {
  if (!existsSync(path)) {
    if (required) throw new ConfigError('CLI_CONFIG', `file ${path} does not exist; point CLI_CONFIG at a readable YAML file`);
    return {};
  }
  try {
    return parseYaml(readFileSync(path, 'utf8')) ?? {};
  } catch (err) {
    throw new ConfigError('CLI_CONFIG', `cannot parse ${path}: ${(err as Error).message.split('\n')[0]}`);
  }
}

function lookup(tree: unknown, path: string): unknown {
  let node = tree;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

export function loadClientConfig(env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const path = env.CLI_CONFIG ?? DEFAULT_CLIENT_CONFIG_PATH;
  const file = readYaml(path, env.CLI_CONFIG !== undefined);
  const get = (key: Key): string => layered(env[KEYS[key]], lookup(file, key), DEFAULTS[key]);
  const id = intIn(KEYS.id, nonEmpty(KEYS.id, get('id')), 1, 0xffffffff);
  const { host, port } = hostPort(KEYS['server.address'], get('server.address'));
  return {
    id,
    host,
    port,
    connectTimeoutMs: durationMs(KEYS['server.connectTimeout'], get('server.connectTimeout')),
    reconnectTimeoutMs: durationMs(KEYS['server.reconnectTimeout'], get('server.reconnectTimeout')),
    maxAmount: intIn(KEYS['batch.maxAmount'], get('batch.maxAmount'), 1, 0xffff),
    logLevel: logLevel(KEYS['log.level'], get('log.level')),
    winnersTimeoutMs: durationMs(KEYS['winners.timeout'], get('winners.timeout'), 24 * 3_600_000),
    dataFile: get('data.file') || `data/agency-${id}.csv`,
  };
}
