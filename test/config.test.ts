/**
 * Configuration refused at start: exit code 2 and one `config | fail` line naming the key.
 * The loaders are also checked directly with env objects (file, then environment).
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadClientConfig } from '../client/config.js';
import { defaultWorkers, loadServerConfig } from '../server/config.js';
import { ConfigError, EXIT_CONFIG, describe as describeConfig } from '../shared/config/values.js';
import { CLIENT_YAML, SERVER_INI, killAll, makeTempDir, removeDir, spawnClient, spawnServer, type Proc } from './helpers/processes.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('config');
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

/** The run ended with exit code 2 after exactly one `config | fail` line whose error starts with `key - ` (the logger turns `: ` inside values into ` - `). */
async function expectRefused(p: Proc, key: string): Promise<string> {
  expect(await p.waitExit(), p.text).toEqual({ code: EXIT_CONFIG, signal: null });
  const lines = p.lines.filter((l) => /action: config \| result: fail \| error: /.test(l));
  expect(lines, p.text).toHaveLength(1);
  const error = lines[0]!.slice(lines[0]!.indexOf('error: ') + 'error: '.length);
  expect(error.startsWith(`${key} - `)).toBe(true);
  expect(p.indexOf('listen')).toBe(-1);
  return error;
}

describe('server refuses a bad configuration with exit code 2', () => {
  it.each([
    ['SERVER_PORT', 'abc', /not an integer/],
    ['SERVER_PORT', '70000', /out of range/],
    ['SERVER_AGENCIES', '0', /out of range/],
    ['SERVER_WORKERS', '-1', /out of range/],
    ['LOGGING_LEVEL', 'LOUD', /not a log level/],
    ['SERVER_DRAIN_TIMEOUT', 'soon', /not a duration/],
    ['SERVER_FSYNC', 'sometimes', /not a switch; use on or off/],
    ['SERVER_STORAGE', 'sqlite', /not a storage; use file .* or postgres/],
  ])('%s=%s', async (key, value, why) => {
    const p = spawnServer({ SERVER_PORT: '0', SERVER_STORAGE_PATH: join(dir, 'never.csv'), [key]: value });
    expect(await expectRefused(p, key)).toMatch(why);
  });

  it('SERVER_STORAGE=postgres without SERVER_DATABASE_URL, or with a URL that is not PostgreSQL (never echoing its password)', async () => {
    const env = { SERVER_PORT: '0', SERVER_STORAGE_PATH: join(dir, 'never.csv'), SERVER_STORAGE: 'postgres' };
    expect(await expectRefused(spawnServer(env), 'SERVER_DATABASE_URL')).toMatch(/is empty but SERVER_STORAGE is postgres/);
    const p = spawnServer({ ...env, SERVER_DATABASE_URL: 'mysql://loteria:hunter2@127.0.0.1:3306/bets' });
    expect(await expectRefused(p, 'SERVER_DATABASE_URL')).toMatch(/scheme mysql/);
    expect(p.text).not.toMatch(/hunter2/);
  });

  it('SERVER_AUTH on (the default) without a keys file: secure by default', async () => {
    const p = spawnServer({ SERVER_PORT: '0', SERVER_STORAGE_PATH: join(dir, 'never.csv'), SERVER_AUTH: undefined });
    expect(await expectRefused(p, 'SERVER_AGENCY_KEYS')).toMatch(/is empty but SERVER_AUTH is on/);
  });

  it('a keys file with a short key, naming the line and not the key', async () => {
    const keys = join(dir, 'short.keys');
    await writeFile(keys, `# agencies\n1=${'k'.repeat(40)}\n2=tooshortakey\n`);
    const p = spawnServer({
      SERVER_PORT: '0',
      SERVER_AGENCIES: '2',
      SERVER_STORAGE_PATH: join(dir, 'never.csv'),
      SERVER_AUTH: 'on',
      SERVER_AGENCY_KEYS: keys,
    });
    const error = await expectRefused(p, 'SERVER_AGENCY_KEYS');
    expect(error).toContain(`${keys} line 3 - agency 2 - the key is 12 characters long`);
    expect(p.text).not.toContain('tooshortakey');
  });

  it('SERVER_AUTH=off starts with a WARN saying so', async () => {
    const p = spawnServer({ SERVER_PORT: '0', SERVER_STORAGE_PATH: join(dir, 'off.csv'), SERVER_AUTH: 'off' });
    await p.waitForAction('listen', 'success');
    const warn = p.lines.find((l) => l.includes('action: autenticacion'));
    expect(warn).toMatch(
      /WARN.*action: autenticacion \| result: success \| modo: off \| aviso: SERVER_AUTH=off - any peer can act for any agency/,
    );
    p.signal('SIGTERM');
    expect(await p.waitExit()).toEqual({ code: 0, signal: null });
  });

  it('SERVER_CONFIG naming a missing file', async () => {
    const missing = join(dir, 'nope.ini');
    const p = spawnServer({ SERVER_CONFIG: missing, SERVER_PORT: '0' });
    expect(await expectRefused(p, 'SERVER_CONFIG')).toContain(missing);
  });

  it('a valid configuration logs config success, then listens', async () => {
    const p = spawnServer({ SERVER_PORT: '0', SERVER_AGENCIES: '3', SERVER_WORKERS: '1', SERVER_STORAGE_PATH: join(dir, 'ok.csv') });
    await p.waitForAction('listen', 'success');
    const config = p.log.find((l) => l.action === 'config');
    expect(config).toMatchObject({ result: 'success', fields: { agencies: '3', workers: '1', host: '127.0.0.1', port: '0' } });
    expect(p.indexOf('config')).toBeLessThan(p.indexOf('listen'));
    p.signal('SIGTERM');
    expect(await p.waitExit()).toEqual({ code: 0, signal: null });
  });
});

describe('client configuration line', () => {
  it('shows every server of the list as host/port, and never the key', async () => {
    const data = join(dir, 'one-bet.csv');
    await writeFile(data, 'Ana,Diaz,30111222,1990-05-17,7574\n');
    const key = 'k'.repeat(64);
    const p = spawnClient({ CLI_ID: '1', CLI_SERVER_ADDRESS: '127.0.0.1:1,localhost:2', CLI_DATA_FILE: data, CLI_KEY: key });
    await p.waitForAction('config', 'success');
    const line = p.log.find((l) => l.action === 'config');
    expect(line?.fields).toMatchObject({ servers: '127.0.0.1/1,localhost/2', host: '127.0.0.1', port: '1' });
    expect(p.text).not.toContain(key);
    p.signal('SIGTERM');
    await p.waitExit();
  });
});

describe('client refuses a bad configuration with exit code 2', () => {
  const good = { CLI_ID: '1', CLI_SERVER_ADDRESS: '127.0.0.1:1', CLI_DATA_FILE: '/nonexistent.csv' };
  it.each([
    ['CLI_ID', 'x', /not an integer/],
    ['CLI_ID', '0', /out of range/],
    ['CLI_BATCH_MAXAMOUNT', '0', /out of range/],
    ['CLI_SERVER_ADDRESS', 'nohostport', /not host:port/],
    ['CLI_SERVER_ADDRESS', '127.0.0.1:99999', /out of range/],
    ['CLI_LOG_LEVEL', 'chatty', /not a log level/],
    ['CLI_SERVER_CONNECTTIMEOUT', '5 s', /not a duration/],
  ])('%s=%s', async (key, value, why) => {
    const p = spawnClient({ ...good, [key]: value });
    expect(await expectRefused(p, key)).toMatch(why);
  });

  it('CLI_CONFIG naming a missing file', async () => {
    const p = spawnClient({ ...good, CLI_CONFIG: join(dir, 'nope.yaml') });
    await expectRefused(p, 'CLI_CONFIG');
  });

  it('CLI_CONFIG naming a file that is not YAML: the file, what is wrong and where', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'id: 1\nserver:\n  address: "127.0.0.1:12345"\n    connectTimeout: 30s\n');
    const error = await expectRefused(spawnClient({ ...good, CLI_CONFIG: bad }), 'CLI_CONFIG');
    expect(error).toContain(`cannot parse ${bad} - bad indentation`);
    expect(error).toMatch(/\(4:\d+\)$/);
  });
});

/** The processors this process may run on, as coreutils counts them (not through Node). */
function coresByNproc(): number {
  return Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
}

describe('loadServerConfig', () => {
  it('defaults to one worker per core the main thread leaves free, never none', () => {
    expect([1, 2, 4, 16].map((cores) => defaultWorkers(cores))).toEqual([1, 1, 3, 15]);
  });

  it('reads server/config.ini, then lets each environment variable override its key', () => {
    const fromFile = loadServerConfig({ SERVER_CONFIG: SERVER_INI, SERVER_AUTH: 'off' });
    expect(fromFile).toEqual({
      host: '0.0.0.0',
      port: 12345,
      backlog: 128,
      agencies: 5,
      storagePath: './bets.csv',
      storage: 'file',
      database: null,
      serverId: `${hostname()}:12345`,
      workers: Math.max(1, coresByNproc() - 1),
      logLevel: 'info',
      drainTimeoutMs: 5000,
      metricsPort: null,
      metricsHost: '0.0.0.0',
      fsync: true,
      auth: 'off',
      agencyKeys: null,
      authTimeoutMs: 5000,
      idleTimeoutMs: 60_000,
      maxUnauthenticated: 128,
      maxUnauthenticatedPerSource: 16,
      tls: null,
    });
    const env = {
      SERVER_CONFIG: SERVER_INI,
      SERVER_AUTH: 'off',
      SERVER_AUTH_TIMEOUT: '2s',
      SERVER_IDLE_TIMEOUT: '1m',
      SERVER_MAX_UNAUTHENTICATED: '10',
      SERVER_MAX_UNAUTHENTICATED_PER_SOURCE: '3',
      SERVER_HOST: '127.0.0.1',
      SERVER_PORT: '0',
      SERVER_AGENCIES: '1',
      SERVER_WORKERS: '0',
      LOGGING_LEVEL: 'debug',
      SERVER_DRAIN_TIMEOUT: '250ms',
      SERVER_STORAGE_PATH: '/tmp/x.csv',
      SERVER_FSYNC: 'OFF',
    };
    expect(loadServerConfig(env)).toMatchObject({
      host: '127.0.0.1',
      port: 0,
      agencies: 1,
      workers: 0,
      logLevel: 'debug',
      drainTimeoutMs: 250,
      storagePath: '/tmp/x.csv',
      fsync: false,
      authTimeoutMs: 2000,
      idleTimeoutMs: 60_000,
      maxUnauthenticated: 10,
      maxUnauthenticatedPerSource: 3,
    });
  });

  it('SERVER_STORAGE=postgres needs SERVER_DATABASE_URL, checks it, and never prints its password', () => {
    const base = { SERVER_CONFIG: SERVER_INI, SERVER_AUTH: 'off', SERVER_STORAGE: 'postgres', SERVER_PORT: '7000', SERVER_ID: 'a' };
    expect(() => loadServerConfig(base)).toThrowError(/^SERVER_DATABASE_URL: is empty but SERVER_STORAGE is postgres/);
    for (const [url, why] of [
      ['mysql://u:hunter2@db:3306/loteria', /scheme mysql/],
      ['postgres://u:hunter2@db:5432/', /names no database/],
      ['not a url hunter2', /is not a URL/],
    ] as const) {
      const load = (): unknown => loadServerConfig({ ...base, SERVER_DATABASE_URL: url });
      expect(load).toThrowError(why);
      expect(load).not.toThrowError(/hunter2/);
    }
    const config = loadServerConfig({
      ...base,
      SERVER_STORAGE: 'POSTGRES',
      SERVER_DATABASE_URL: 'postgresql://loteria:hunter2@db:6543/bets',
    });
    expect(config).toMatchObject({ storage: 'postgres', serverId: 'a' });
    expect(config.database?.connectionString).toBe('postgresql://loteria:hunter2@db:6543/bets');
    const shown = describeConfig(config);
    expect(shown).toMatchObject({ storage: 'postgres', database: 'loteria@db/6543/bets', serverId: 'a' });
    expect(JSON.stringify(shown) + JSON.stringify(config) + inspect(config)).not.toMatch(/hunter2/);
    // The file storage ignores a URL; the default id is hostname:port.
    const file = loadServerConfig({ ...base, SERVER_STORAGE: 'file', SERVER_DATABASE_URL: 'nonsense', SERVER_ID: '' });
    expect(file).toMatchObject({ storage: 'file', database: null, serverId: `${hostname()}:7000` });
  });

  it('also takes the storage as `storage` in the ini file, SERVER_STORAGE winning over it', async () => {
    const path = join(dir, 'storage.ini');
    await writeFile(path, '[DEFAULT]\nstorage = postgres\nSERVER_DATABASE_URL = postgres://loteria@db:5432/bets\nSERVER_AUTH = off\n');
    expect(loadServerConfig({ SERVER_CONFIG: path })).toMatchObject({ storage: 'postgres', database: expect.anything() });
    expect(loadServerConfig({ SERVER_CONFIG: path, SERVER_STORAGE: 'file' })).toMatchObject({ storage: 'file', database: null });
  });

  it('reads `storage = postgres` added to a copy of the shipped ini, and refuses two spellings that disagree', async () => {
    const shipped = await readFile(SERVER_INI, 'utf8');
    expect(shipped).toMatch(/^SERVER_STORAGE = file$/m);
    const url = 'SERVER_DATABASE_URL = postgres://loteria@db:5432/bets';
    const blank = join(dir, 'blank.ini');
    await writeFile(blank, `${shipped.replace(/^SERVER_STORAGE = file$/m, 'SERVER_STORAGE =')}\nstorage = postgres\n${url}\n`);
    expect(loadServerConfig({ SERVER_CONFIG: blank, SERVER_AUTH: 'off' })).toMatchObject({ storage: 'postgres' });
    const both = join(dir, 'both.ini');
    await writeFile(both, `${shipped}\nstorage = postgres\n${url}\n`);
    expect(() => loadServerConfig({ SERVER_CONFIG: both, SERVER_AUTH: 'off' })).toThrowError(
      /SERVER_STORAGE = file and storage = postgres; keep one/,
    );
  });

  it('treats an empty variable as unset', () => {
    expect(loadServerConfig({ SERVER_CONFIG: SERVER_INI, SERVER_AUTH: 'off', SERVER_PORT: '' }).port).toBe(12345);
  });

  it.each([
    ['SERVER_PORT', '-1'],
    ['SERVER_PORT', '1.5'],
    ['SERVER_LISTEN_BACKLOG', '0'],
    ['SERVER_AGENCIES', 'five'],
    ['SERVER_WORKERS', '257'],
    ['LOGGING_LEVEL', 'LOUD'],
    ['SERVER_DRAIN_TIMEOUT', '2h'],
    ['SERVER_HOST', '   '],
    ['SERVER_FSYNC', 'maybe'],
    ['SERVER_STORAGE', 'sqlite'],
  ])('refuses %s=%j naming the key', (key, value) => {
    const env = { SERVER_CONFIG: SERVER_INI, SERVER_AUTH: 'off', [key]: value };
    expect(() => loadServerConfig(env)).toThrowError(ConfigError);
    expect(() => loadServerConfig(env)).toThrowError(new RegExp(`^${key}: `));
  });
});

describe('loadClientConfig', () => {
  it("reads YAML 1.2's core schema: a date-like path stays the text written", async () => {
    const yaml = join(dir, 'dates.yaml');
    await writeFile(yaml, 'id: 2\ndata:\n  file: 2024-01-01\n');
    expect(loadClientConfig({ CLI_CONFIG: yaml })).toMatchObject({ id: 2, dataFile: '2024-01-01' });
  });

  it('reads client/config.yaml, then the CLI_* overrides', () => {
    expect(loadClientConfig({ CLI_CONFIG: CLIENT_YAML })).toEqual({
      id: 1,
      host: '127.0.0.1',
      port: 12345,
      servers: [{ host: '127.0.0.1', port: 12345 }],
      connectTimeoutMs: 30_000,
      reconnectTimeoutMs: 60_000,
      maxAmount: 150,
      logLevel: 'info',
      winnersTimeoutMs: 120_000,
      dataFile: 'data/agency-1.csv',
      key: null,
      tls: null,
    });
    expect(
      loadClientConfig({
        CLI_CONFIG: CLIENT_YAML,
        CLI_ID: '4',
        CLI_SERVER_ADDRESS: 'server:4000',
        CLI_BATCH_MAXAMOUNT: '7',
        CLI_LOG_LEVEL: 'WARN',
        CLI_SERVER_CONNECTTIMEOUT: '2s',
        CLI_SERVER_RECONNECTTIMEOUT: '90s',
        CLI_WINNERS_TIMEOUT: '1m',
        CLI_DATA_FILE: '/d/a.csv',
      }),
    ).toEqual({
      id: 4,
      host: 'server',
      port: 4000,
      servers: [{ host: 'server', port: 4000 }],
      connectTimeoutMs: 2000,
      reconnectTimeoutMs: 90_000,
      maxAmount: 7,
      logLevel: 'warn',
      winnersTimeoutMs: 60_000,
      dataFile: '/d/a.csv',
      key: null,
      tls: null,
    });
  });

  it('defaults the data file to data/agency-{id}.csv and accepts an IPv6 host in brackets', () => {
    const c = loadClientConfig({ CLI_CONFIG: CLIENT_YAML, CLI_ID: '3', CLI_SERVER_ADDRESS: '[::1]:5000' });
    expect(c).toMatchObject({ id: 3, host: '::1', port: 5000, dataFile: 'data/agency-3.csv' });
  });

  it('takes a comma-separated list of servers, the first one first', () => {
    const c = loadClientConfig({ CLI_CONFIG: CLIENT_YAML, CLI_SERVER_ADDRESS: 'server1:12345, server2:12346,[::1]:7' });
    expect(c).toMatchObject({
      host: 'server1',
      port: 12345,
      servers: [
        { host: 'server1', port: 12345 },
        { host: 'server2', port: 12346 },
        { host: '::1', port: 7 },
      ],
    });
  });

  it.each([
    ['CLI_SERVER_ADDRESS', 'a:1,,b:2'],
    ['CLI_SERVER_ADDRESS', 'a:1,b'],
    ['CLI_ID', 'x'],
    ['CLI_ID', '-2'],
    ['CLI_BATCH_MAXAMOUNT', '0'],
    ['CLI_BATCH_MAXAMOUNT', '65536'],
    ['CLI_SERVER_ADDRESS', 'nohostport'],
    ['CLI_SERVER_ADDRESS', 'host:'],
    ['CLI_WINNERS_TIMEOUT', 'forever'],
  ])('refuses %s=%j naming the key', (key, value) => {
    expect(() => loadClientConfig({ CLI_CONFIG: CLIENT_YAML, [key]: value })).toThrowError(new RegExp(`^${key}: `));
  });
});
