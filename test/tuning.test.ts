/**
 * The client's process tuning (client/tuning.ts). The built client changes V8's flags at run
 * time, after the built-ins its run needs are loaded, so that V8 compiles none of them from
 * source (a built-in first loaded after the change misses Node's code cache); and it starts
 * one thread in libuv's pool, two when it has a host name to look up. A preload
 * (test/helpers/builtins.ts) reports the flags set at run time, the built-ins loaded after
 * the first of them, and the process's threads.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_TIERING_FLAGS } from '../client/tuning.js';
import { generateAgencyFile } from '../tools/gen-data/files.js';
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
async function run(host: string, setup: Setup, clientEnv: Record<string, string> = {}, wrapper?: string[]): Promise<BuiltinsReport> {
  const n = ++runs;
  const { port } = await startServer({ storagePath: join(dir, `bets-${n}.csv`), agencies: 1, env: setup.server });
  const record = await recordBuiltins(dir, `client-${n}`);
  const servers = host.split(',').map((h) => `${h}:${port}`);
  const client = startClient({
    port,
    id: 1,
    dataFile: join(dir, 'agency-1.csv'),
    env: { ...record.env, ...setup.client, ...clientEnv, CLI_SERVER_ADDRESS: servers.join(',') },
    wrapper,
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
      const { flags, late } = await run(host, setup());
      expect(flags).toEqual(CLIENT_TIERING_FLAGS);
      expect(late).toEqual([]);
    },
  );

  it("starts one thread in libuv's pool, two with a host name to look up, or as many as UV_THREADPOOL_SIZE says", {
    timeout: 90_000,
  }, async () => {
    const byAddress = await run('127.0.0.1', plain());
    const byName = await run('localhost', plain());
    const four = await run('127.0.0.1', plain(), { UV_THREADPOOL_SIZE: '4' });
    expect(byName.threads - byAddress.threads).toBe(1);
    expect(four.threads - byAddress.threads).toBe(3);
  });

  // A mount namespace of the client's own, whose resolver is a socket that never answers.
  const isolated = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;
  it.skipIf(!isolated)(
    'a lookup stuck on a silent resolver leaves a thread for the file: the run ends while it waits',
    { timeout: 60_000 },
    async () => {
      const nameserver = `127.77.${1 + Math.floor(Math.random() * 250)}.53`;
      const silent = createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        silent.once('error', reject);
        silent.bind(53, nameserver, () => resolve());
      });
      try {
        const resolv = join(dir, 'resolv.conf');
        await writeFile(resolv, `nameserver ${nameserver}\noptions timeout:30 attempts:1\n`);
        const { port } = await startServer({ storagePath: join(dir, 'bets-silent.csv'), agencies: 1 });
        const client = startClient({
          port,
          id: 1,
          dataFile: join(dir, 'agency-1.csv'),
          env: { CLI_SERVER_ADDRESS: `silent.invalid:${port},127.0.0.1:${port}` },
          wrapper: ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolv],
        });
        // The dialer gives up on the name after its attempt's timeout (5 s) and connects to the
        // address, while the lookup holds a pool thread for 30 s. With one thread in the pool,
        // the file's first read would wait for it, and the run would end after those 30 s.
        // (The process itself exits only when the lookup returns: libuv joins its threads.)
        const exit = await client.waitForAction('exit', undefined, 20_000);
        expect(exit.result).toBe('success');
        expect(exit.fields.almacenadas).toBe(String(ROWS));
        client.signal('SIGKILL');
      } finally {
        silent.close();
      }
    },
  );
});
