/**
 * Client configuration: `client/config.yaml` (the course's keys), each key overridden by
 * CLI_<PATH> with dots removed and upper-cased: `batch.maxAmount` -> CLI_BATCH_MAXAMOUNT.
 */
import { existsSync, readFileSync } from 'node:fs';
import { CORE_SCHEMA, load } from 'js-yaml';
import { AgencyKey } from '../shared/auth/agency-key.js';
import { type ClientTls, loadClientTls } from '../shared/config/tls-files.js';
import { ConfigError, durationMs, hostPort, intIn, layered, logLevel, nonEmpty } from '../shared/config/values.js';

export interface ServerAddress {
  host: string;
  port: number;
}

export interface ClientConfig {
  id: number;
  /** The first server of `servers`. */
  host: string;
  port: number;
  /**
   * server.address: one `host:port`, or several separated by commas. The first that answers
   * is used; after a lost connection or a failed attempt the next is tried (round robin).
   */
  servers: ServerAddress[];
  /** How long to keep retrying the first connection while the server is not up. */
  connectTimeoutMs: number;
  /** How long to keep trying to reconnect, once connected, after losing the server (it restarts). */
  reconnectTimeoutMs: number;
  maxAmount: number;
  logLevel: string;
  /** How long to wait for the winners after FINISHED (the server holds the query until the draw). */
  winnersTimeoutMs: number;
  dataFile: string;
  /** The agency's key (CLI_KEY, or the file CLI_KEY_FILE / auth.keyFile); null: none (the server must run with SERVER_AUTH=off). Prints as [redacted]. */
  key: AgencyKey | null;
  /** CLI_TLS_CA / tls.ca: connect with TLS trusting only this CA; null: plain TCP. */
  tls: ClientTls | null;
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
  'auth.keyFile': 'CLI_KEY_FILE',
  'tls.ca': 'CLI_TLS_CA',
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
    // YAML 1.2's core schema: no timestamps, no merge keys (a date-like path stays a string).
    return load(readFileSync(path, 'utf8'), { schema: CORE_SCHEMA }) ?? {};
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
  const servers = serverList(get('server.address'));
  const { host, port } = servers[0]!;
  return {
    id,
    host,
    port,
    servers,
    connectTimeoutMs: durationMs(KEYS['server.connectTimeout'], get('server.connectTimeout')),
    reconnectTimeoutMs: durationMs(KEYS['server.reconnectTimeout'], get('server.reconnectTimeout')),
    maxAmount: intIn(KEYS['batch.maxAmount'], get('batch.maxAmount'), 1, 0xffff),
    logLevel: logLevel(KEYS['log.level'], get('log.level')),
    winnersTimeoutMs: durationMs(KEYS['winners.timeout'], get('winners.timeout'), 24 * 3_600_000),
    dataFile: get('data.file') || `data/agency-${id}.csv`,
    key: agencyKey(env.CLI_KEY, env.CLI_KEY_FILE, get('auth.keyFile').trim()),
    tls: loadClientTls(KEYS['tls.ca'], get('tls.ca').trim()),
  };
}

/** `host:port[,host:port...]`: every entry checked, none empty. */
function serverList(raw: string): ServerAddress[] {
  const key = KEYS['server.address'];
  const entries = raw.split(',').map((e) => e.trim());
  if (entries.length > 1 && entries.some((e) => e === ''))
    throw new ConfigError(key, `${JSON.stringify(raw)} has an empty entry; write host:port, or several as host1:port1,host2:port2`);
  return entries.map((e) => hostPort(key, e));
}

/**
 * The key itself in CLI_KEY (environment only: a key does not belong in config.yaml), or a
 * file holding it; CLI_KEY wins over auth.keyFile from the YAML, but both in the environment
 * is ambiguous and refused. Errors never quote the key.
 */
function agencyKey(inline: string | undefined, keyFileFromEnv: string | undefined, keyFile: string): AgencyKey | null {
  if (inline !== undefined && inline !== '') {
    if (keyFileFromEnv !== undefined && keyFileFromEnv !== '')
      throw new ConfigError('CLI_KEY', 'and CLI_KEY_FILE are both set; give the key one way only');
    try {
      return AgencyKey.parse(inline);
    } catch (err) {
      throw new ConfigError('CLI_KEY', (err as Error).message);
    }
  }
  return keyFile === '' ? null : readKeyFile(keyFile);
}

/** One key on its own line; blank lines and # comments around it are allowed. */
export function readKeyFile(path: string): AgencyKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      KEYS['auth.keyFile'],
      `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run make keys or point CLI_KEY_FILE at the agency's key file`,
    );
  }
  const lines = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .map((l, i) => ({ n: i + 1, text: l.trim() }))
    .filter((l) => l.text !== '' && !l.text.startsWith('#'));
  const [first, second] = lines;
  if (first === undefined) throw new ConfigError(KEYS['auth.keyFile'], `${path} holds no key; write the agency's key on one line`);
  if (second !== undefined)
    throw new ConfigError(
      KEYS['auth.keyFile'],
      `${path} line ${second.n}: a second key (the first is on line ${first.n}); a key file holds one key`,
    );
  try {
    return AgencyKey.parse(first.text);
  } catch (err) {
    throw new ConfigError(KEYS['auth.keyFile'], `${path} line ${first.n}: ${(err as Error).message}`);
  }
}
