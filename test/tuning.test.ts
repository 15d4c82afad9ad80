/**
 * The client's process tuning (client/tuning.ts). The built client changes V8's flags at run
 * time, after the built-ins its run needs are loaded, so that V8 compiles none of them from
 * source (a built-in first loaded after the change misses Node's code cache); and it starts
 * one thread in libuv's pool. A preload hook wraps v8.setFlagsFromString, marks where the
 * client first calls it, and writes at exit which built-in modules were loaded after that
 * mark, and how many threads the process has.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateAgencyFile } from '../tools/gen-data/files.js';
import { genKeys } from '../tools/gen-keys.js';
import { CLIENT_NODE_FLAGS, NodeProcess } from '../tools/lib/processes.js';
import { CLIENT_MAIN, CLIENT_YAML, ROOT, baseEnv, killAll, makeTempDir, removeDir, startServer } from './helpers/processes.js';

const ROWS = 3_000;

const HOOK = `'use strict';
const v8 = require('node:v8');
const { readdirSync, writeFileSync } = require('node:fs');
const set = v8.setFlagsFromString;
const flags = [];
let mark = -1;
v8.setFlagsFromString = (flag) => {
  if (mark < 0) mark = process.moduleLoadList.length;
  flags.push(flag);
  set(flag);
};
process.on('exit', () => {
  const late = mark < 0 ? [] : process.moduleLoadList.slice(mark).filter((m) => m.startsWith('NativeModule '));
  const threads = readdirSync('/proc/self/task').length;
  writeFileSync(process.env.TUNING_REPORT, JSON.stringify({ flags, late, threads }));
});
`;

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('tiering');
  genKeys(1, join(dir, 'keys'));
  await writeFile(join(dir, 'hook.cjs'), HOOK);
  await generateAgencyFile({ path: join(dir, 'agency-1.csv'), agency: 1, seed: 7, rows: ROWS });
  await promisify(execFile)('bash', [join(ROOT, 'tools/make-certs.sh'), join(dir, 'certs')]);
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

const AUTH = { SERVER_AUTH: 'on', SERVER_AGENCY_KEYS: 'keys/agencies.keys' };
const TLS = { SERVER_TLS_CERT: 'certs/server.crt', SERVER_TLS_KEY: 'certs/server.key' };
const KEY = { CLI_KEY_FILE: 'keys/agency-1.key' };

interface Report {
  flags: string[];
  late: string[];
  threads: number;
}

let runs = 0;

/** One whole run of the built client (under the hook) against a server of its own; the hook's report. */
async function run(host: string, serverEnv: Record<string, string>, clientEnv: Record<string, string>): Promise<Report> {
  // Paths are relative to the temp dir; SERVER_AUTH and UV_THREADPOOL_SIZE are values.
  const abs = (env: Record<string, string>): Record<string, string> =>
    Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.includes('/') ? join(dir, v) : v]));
  const n = ++runs;
  const { port } = await startServer({ storagePath: join(dir, `bets-${n}.csv`), agencies: 1, env: abs(serverEnv) });
  const report = join(dir, `report-${n}.json`);
  const client = new NodeProcess({
    name: 'client-1',
    args: ['-r', join(dir, 'hook.cjs'), ...CLIENT_NODE_FLAGS, CLIENT_MAIN],
    cwd: ROOT,
    env: baseEnv({
      CLI_CONFIG: CLIENT_YAML,
      CLI_ID: '1',
      CLI_SERVER_ADDRESS: `${host}:${port}`,
      CLI_DATA_FILE: join(dir, 'agency-1.csv'),
      TUNING_REPORT: report,
      ...abs(clientEnv),
    }),
  });
  expect(await client.waitExit(30_000), client.lines.slice(-10).join('\n')).toEqual({ code: 0, signal: null });
  expect(client.log.find((l) => l.action === 'exit')?.fields.almacenadas).toBe(String(ROWS));
  return JSON.parse(await readFile(report, 'utf8')) as Report;
}

describe('the built client tunes its process at run time', () => {
  it.each([
    ['an IP address, no key, no TLS', '127.0.0.1', {}, {}],
    ['a host name and a key', 'localhost', AUTH, KEY],
    ['a host name, a key and TLS', 'localhost', { ...AUTH, ...TLS }, { ...KEY, CLI_TLS_CA: 'certs/ca.crt' }],
  ])(
    'with %s: it raises the tiering budgets, loads no built-in module after that, and its run succeeds',
    { timeout: 60_000 },
    async (_, host, serverEnv, clientEnv) => {
      const { flags, late } = await run(host, serverEnv, clientEnv);
      expect(flags.map((f) => f.split('=')[0])).toEqual(['--interrupt-budget', '--wasm-tiering-budget']);
      expect(late).toEqual([]);
    },
  );

  it("starts one thread in libuv's pool, or as many as UV_THREADPOOL_SIZE says", { timeout: 60_000 }, async () => {
    const tuned = await run('localhost', AUTH, KEY);
    const four = await run('localhost', AUTH, { ...KEY, UV_THREADPOOL_SIZE: '4' });
    expect(four.threads - tuned.threads).toBe(3);
  });
});
