/**
 * The client's V8 tiering (client/tiering.ts): the built client changes V8's flags at run time,
 * after the built-ins its run needs are loaded, so that V8 compiles none of them from source
 * (a built-in first loaded after the change misses Node's code cache). A preload hook wraps
 * v8.setFlagsFromString, marks where the client first calls it, and writes at exit which
 * built-in modules were loaded after that mark.
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
const { writeFileSync } = require('node:fs');
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
  writeFileSync(process.env.TIERING_REPORT, JSON.stringify({ flags, late }));
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

const AUTH = { SERVER_AUTH: 'on', SERVER_AGENCY_KEYS: join('keys', 'agencies.keys') };
const TLS = { SERVER_TLS_CERT: join('certs', 'server.crt'), SERVER_TLS_KEY: join('certs', 'server.key') };

describe('the built client tunes V8 tiering at run time', () => {
  it.each([
    ['an IP address, no key, no TLS', '127.0.0.1', {}, {}],
    ['a host name and a key', 'localhost', AUTH, { CLI_KEY_FILE: 'keys/agency-1.key' }],
    ['a host name, a key and TLS', 'localhost', { ...AUTH, ...TLS }, { CLI_KEY_FILE: 'keys/agency-1.key', CLI_TLS_CA: 'certs/ca.crt' }],
  ])(
    'with %s: after its flags, it loads no built-in module, and its run succeeds',
    { timeout: 60_000 },
    async (_, host, serverEnv, clientEnv) => {
      const abs = (env: Record<string, string>): Record<string, string> =>
        Object.fromEntries(Object.entries(env).map(([k, v]) => [k, k === 'SERVER_AUTH' ? v : join(dir, v)]));
      const { port } = await startServer({
        storagePath: join(dir, `${host}-${Object.keys(clientEnv).length}.csv`),
        agencies: 1,
        env: abs(serverEnv),
      });
      const report = join(dir, `report-${host}-${Object.keys(clientEnv).length}.json`);
      const client = new NodeProcess({
        name: 'client-1',
        args: ['-r', join(dir, 'hook.cjs'), ...CLIENT_NODE_FLAGS, CLIENT_MAIN],
        cwd: ROOT,
        env: baseEnv({
          CLI_CONFIG: CLIENT_YAML,
          CLI_ID: '1',
          CLI_SERVER_ADDRESS: `${host}:${port}`,
          CLI_DATA_FILE: join(dir, 'agency-1.csv'),
          TIERING_REPORT: report,
          ...abs(clientEnv),
        }),
      });
      expect(await client.waitExit(30_000), client.lines.slice(-10).join('\n')).toEqual({ code: 0, signal: null });
      expect(client.log.find((l) => l.action === 'exit')?.fields.almacenadas).toBe(String(ROWS));
      const { flags, late } = JSON.parse(await readFile(report, 'utf8')) as { flags: string[]; late: string[] };
      expect(flags.map((f) => f.split('=')[0])).toEqual(['--interrupt-budget', '--wasm-tiering-budget']);
      expect(late).toEqual([]);
    },
  );
});
