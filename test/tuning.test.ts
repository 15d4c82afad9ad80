/**
 * The client's process tuning (client/tuning.ts). The built client changes V8's flags at run
 * time, after the built-ins its run needs are loaded, so that V8 compiles none of them from
 * source (a built-in first loaded after the change misses Node's code cache); and it starts
 * one thread in libuv's pool, two when it has a host name to look up. A preload
 * (test/helpers/builtins.ts) reports the flags set at run time, the built-ins loaded after
 * the first of them and after start (from the client's start-up snapshot, each must find Node's
 * code cache in the blob), and the process's threads.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_TIERING_FLAGS } from '../client/tuning.js';
import { generateAgencyFile } from '../tools/gen-data/files.js';
import { CLIENT_BLOB } from '../tools/lib/processes.js';
import { findBuiltinCodeCache } from '../tools/lib/snapshot-blob.js';
import { genKeys } from '../tools/gen-keys.js';
import { type BuiltinsReport, recordBuiltins } from './helpers/builtins.js';
import { ROOT, killAll, makeTempDir, removeDir, startClient, startServer } from './helpers/processes.js';

const ROWS = 3_000;

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('tuning');
  genKeys(1, join(dir, 'keys'));
  await generateAgencyFile({ path: join(dir, 'agency-1.csv'), agency: 1, seed: 7, rows: ROWS });
  await promisify(execFile)('bash', [join(ROOT, 'tools/make-certs.sh'), join(dir, 'certs')]);
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

interface Setup {
  server: Record<string, string>;
  client: Record<string, string>;
}
const plain = (): Setup => ({ server: {}, client: {} });
const keyed = (): Setup => ({
  server: { SERVER_AUTH: 'on', SERVER_AGENCY_KEYS: join(dir, 'keys/agencies.keys') },
  client: { CLI_KEY_FILE: join(dir, 'keys/agency-1.key') },
});
const keyedTls = (): Setup => ({
  server: { ...keyed().server, SERVER_TLS_CERT: join(dir, 'certs/server.crt'), SERVER_TLS_KEY: join(dir, 'certs/server.key') },
  client: { ...keyed().client, CLI_TLS_CA: join(dir, 'certs/ca.crt') },
});

let runs = 0;

/** One whole run of the built client (under the preload) against a server of its own; its report. */
async function run(host: string, setup: Setup, clientEnv: Record<string, string> = {}): Promise<BuiltinsReport> {
  const n = ++runs;
  const { port } = await startServer({ storagePath: join(dir, `bets-${n}.csv`), agencies: 1, env: setup.server });
  const record = await recordBuiltins(dir, `client-${n}`);
  const client = startClient({
    port,
    id: 1,
    dataFile: join(dir, 'agency-1.csv'),
    env: { ...record.env, ...setup.client, ...clientEnv, CLI_SERVER_ADDRESS: `${host}:${port}` },
  });
  expect(await client.waitExit(30_000), client.lines.slice(-10).join('\n')).toEqual({ code: 0, signal: null });
  expect(client.log.find((l) => l.action === 'exit')?.fields.almacenadas).toBe(String(ROWS));
  // V8 reports a flag it does not know, or a bad value, on stderr and goes on without it.
  expect(client.lines.filter((l) => /flag/i.test(l))).toEqual([]);
  return record.read();
}

describe('the built client tunes its process at run time', () => {
  it.each([
    ['an IP address, no key, no TLS', '127.0.0.1', plain],
    ['a host name and a key', 'localhost', keyed],
    ['a host name, a key and TLS', 'localhost', keyedTls],
  ])(
    'with %s: it raises the tiering budgets, loads no built-in module after that, and its run succeeds',
    { timeout: 60_000 },
    async (_, host, setup) => {
      const { flags, late, afterStart } = await run(host, setup());
      expect(flags).toEqual(CLIENT_TIERING_FLAGS);
      expect(late).toEqual([]);
      // What it loads beyond its start-up snapshot finds Node's code cache there (tools/bundle.ts).
      const cached = findBuiltinCodeCache(await readFile(join(ROOT, CLIENT_BLOB)))?.entries.map((e) => e.id) ?? [];
      expect(afterStart.filter((id) => !cached.includes(id))).toEqual([]);
      if (setup !== plain) expect(afterStart).toContain('crypto');
    },
  );

  it("starts one thread in libuv's pool, two with a host name to look up, or as many as a positive UV_THREADPOOL_SIZE says", {
    timeout: 90_000,
  }, async () => {
    const byAddress = await run('127.0.0.1', plain());
    const byName = await run('localhost', plain());
    const four = await run('127.0.0.1', plain(), { UV_THREADPOOL_SIZE: '4' });
    // libuv would read an empty value as one thread: the client counts it as unset.
    const empty = await run('localhost', plain(), { UV_THREADPOOL_SIZE: '' });
    expect(byName.threads - byAddress.threads).toBe(1);
    expect(four.threads - byAddress.threads).toBe(3);
    expect(empty.threads).toBe(byName.threads);
  });

  it('a lookup stuck on a silent resolver leaves a thread for the file: the run ends while it waits', { timeout: 60_000 }, async ({
    skip,
  }) => {
    const why = isolationMissing();
    if (why !== null) skip(why);
    const silent = await silentResolver();
    if (silent === null) {
      skip('no free 127.77.x.53:53 to bind the silent resolver to');
      return;
    }
    try {
      const resolv = join(dir, 'resolv.conf');
      await writeFile(resolv, `nameserver ${silent.address}\noptions timeout:30 attempts:1\n`);
      const { port } = await startServer({ storagePath: join(dir, 'bets-silent.csv'), agencies: 1 });
      const client = startClient({
        port,
        id: 1,
        dataFile: join(dir, 'agency-1.csv'),
        env: { CLI_SERVER_ADDRESS: `silent.invalid:${port},127.0.0.1:${port}` },
        wrapper: [...ISOLATE, 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolv],
      });
      // The dialer gives up on the name after its attempt's timeout (5 s) and connects to the
      // address, while the lookup holds a pool thread for 30 s. With one thread in the pool,
      // the file's first read would wait for it, and the run would end after those 30 s.
      const exit = await client.waitForAction('exit', undefined, 20_000);
      expect(exit.result).toBe('success');
      expect(exit.fields.almacenadas).toBe(String(ROWS));
      expect(client.lines.some((l) => /action: connect \| result: in_progress .*silent\.invalid.* no answer/.test(l))).toBe(true);
      // The lookup did reach the silent resolver, and still holds its thread: the process
      // exits only when it returns (libuv joins its threads at exit).
      expect(silent.queries()).toBeGreaterThan(0);
      expect(client.exitedAt).toBeNaN();
      client.signal('SIGKILL');
    } finally {
      silent.close();
    }
  });
});

/** A mount namespace of the client's own, whose mounts stay there. */
const ISOLATE = ['unshare', '-m', '--propagation', 'private'];

/** Why a mount namespace with its own /etc/resolv.conf cannot be made here, or null. */
function isolationMissing(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (a mount namespace with its own /etc/resolv.conf)';
  const probe = spawnSync(ISOLATE[0]!, [...ISOLATE.slice(1), 'mount', '--bind', '/etc/resolv.conf', '/etc/resolv.conf']);
  return probe.status === 0 ? null : `cannot bind-mount /etc/resolv.conf in a mount namespace: ${String(probe.stderr).trim()}`;
}

/** A UDP socket on port 53 of a free 127.77.x.53 that takes queries and answers none. */
async function silentResolver(): Promise<{ address: string; queries: () => number; close: () => void } | null> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const address = `127.77.${1 + Math.floor(Math.random() * 250)}.53`;
    const socket = createSocket('udp4');
    let queries = 0;
    socket.on('message', () => queries++);
    const bound = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(53, address, () => resolve(true));
    });
    if (bound) return { address, queries: () => queries, close: () => socket.close() };
    socket.close();
  }
  return null;
}
