/**
 * The code cache of the client's bundle (shared/util/cached-script.ts): V8 takes a cache
 * written for the same bundle, and a missing or stale one only costs the compile. Then the
 * built programs themselves: dist/client/main.cjs and dist/server/main.cjs run their cli.cjs
 * with its cache, written after a warm-up that runs each program once over loopback.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachePathOf, loadBundle, writeBundleCache } from '../shared/util/cached-script.js';
import { CLIENT_NODE_FLAGS } from '../tools/lib/processes.js';
import { recordBuiltins } from './helpers/builtins.js';
import { ROOT, killAll, makeTempDir, removeDir, startClient, startServer } from './helpers/processes.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('cached-script');
});
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

const BUNDLE = `'use strict';
const { basename } = require('node:path');
let calls = 0;
function square(x) { calls++; return x * x; }
exports.square = square;
exports.calls = () => calls;
exports.where = () => basename(__filename) + ' in ' + basename(__dirname);
`;

/** loadBundle(bundle) in a Node of its own started with `flags`: whether V8 took the cache, and the export names. */
function loadInChild(bundle: string, flags: readonly string[]): { cacheUsed: boolean; exports: string[] } {
  const out = execFileSync(
    process.execPath,
    [
      ...flags,
      '--input-type=module',
      '-e',
      `import { loadBundle } from ${JSON.stringify(join(ROOT, 'dist/shared/util/cached-script.js'))};
       const p = loadBundle(${JSON.stringify(bundle)});
       process.stdout.write(JSON.stringify({ cacheUsed: p.cacheUsed, exports: Object.keys(p.exports).sort() }));`,
    ],
    { encoding: 'utf8' },
  );
  return JSON.parse(out) as { cacheUsed: boolean; exports: string[] };
}

describe('loadBundle and writeBundleCache', () => {
  it('runs a CommonJS bundle with require, __filename and __dirname, with or without a cache', async () => {
    const bundle = join(dir, 'prog.cjs');
    await writeFile(bundle, BUNDLE);
    const cold = loadBundle(bundle);
    expect(cold.cacheUsed).toBe(false);
    expect((cold.exports.square as (x: number) => number)(7)).toBe(49);
    expect((cold.exports.where as () => string)()).toMatch(/^prog\.cjs in cached-script/);

    let warmed = 0;
    const warmUp = (exports: Record<string, unknown>): void => {
      warmed = (exports.square as (x: number) => number)(3);
    };
    expect(await writeBundleCache(bundle, warmUp)).toBeGreaterThan(0);
    expect(warmed).toBe(9);
    expect(existsSync(cachePathOf(bundle))).toBe(true);
    const warm = loadBundle(bundle);
    expect(warm.cacheUsed).toBe(true);
    // A fresh module each time: state is not shared with the build-time run.
    expect((warm.exports.calls as () => number)()).toBe(0);
    expect((warm.exports.square as (x: number) => number)(5)).toBe(25);
  });

  it('ignores a cache written for other bytes, and runs the bundle as it is now', async () => {
    const bundle = join(dir, 'stale.cjs');
    await writeFile(bundle, BUNDLE);
    await writeBundleCache(bundle);
    await writeFile(bundle, BUNDLE.replace('x * x', 'x * x + 1'));
    const loaded = loadBundle(bundle);
    expect(loaded.cacheUsed).toBe(false);
    expect((loaded.exports.square as (x: number) => number)(2)).toBe(5);
    await rm(cachePathOf(bundle));
    expect((loadBundle(bundle).exports.square as (x: number) => number)(2)).toBe(5);
  });

  it('awaits an async warm-up, and caches what it ran after an await (compiled lazily) too', async () => {
    const bundle = join(dir, 'later.cjs');
    await writeFile(
      bundle,
      `${BUNDLE}\nexports.later = function later(xs) { let t = 0; for (const x of xs) t += square(x) % 7; return t; };\n`,
    );
    const moduleInitOnly = await writeBundleCache(bundle);
    let result = -1;
    const size = await writeBundleCache(bundle, async (exports) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      result = (exports.later as (xs: number[]) => number)([1, 2, 3]);
    });
    expect(result).toBe(1 + 4 + 2);
    expect(size).toBeGreaterThan(moduleInitOnly);
    const warm = loadBundle(bundle);
    expect(warm.cacheUsed).toBe(true);
    expect((warm.exports.later as (xs: number[]) => number)([3])).toBe(2);
  });
});

describe('the build-time warm-ups (the caches are written after them)', () => {
  const leftovers = (prefix: string): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith(prefix));

  it.each([
    ['the server: a whole lottery in this process', async () => (await import('../server/warm-up.js')).warmUp(), 'loteria-warm-up-'],
    [
      'the client: a whole run against a scripted peer',
      async () => (await import('../client/warm-up.js')).warmUp(),
      'loteria-client-warm-up-',
    ],
  ])('%s, over loopback, ends with its winners and leaves no file behind', { timeout: 20_000 }, async (_, warmUp, prefix) => {
    const before = leftovers(prefix);
    expect(await warmUp()).toEqual(['30111222']);
    expect(leftovers(prefix)).toEqual(before);
  });

  it.each([
    ['client', CLIENT_NODE_FLAGS],
    ['server', [] as readonly string[]],
  ])(
    'run by the build on the bundled %s, succeeds silently and writes a cache the program takes',
    { timeout: 30_000 },
    async (name, flags) => {
      const bundle = join(dir, name, 'cli.cjs');
      await mkdir(dirname(bundle), { recursive: true });
      await copyFile(join(ROOT, `dist/${name}/cli.cjs`), bundle);
      // The server's warm-up runs a pool, whose threads start on the scripts beside the bundle.
      if (name === 'server') await symlink(join(ROOT, 'dist/server/pool'), join(dirname(bundle), 'pool'));
      const run = spawnSync(process.execPath, [...flags, join(ROOT, 'dist/tools/write-cache.js'), bundle, 'warmUp'], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { PATH: process.env.PATH },
      });
      expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({ status: 0, stdout: '', stderr: '' });
      expect(statSync(cachePathOf(bundle)).size).toBeGreaterThan(statSync(bundle).size / 2);
      expect(loadInChild(bundle, flags).cacheUsed).toBe(true);
    },
  );
});

describe('the built client', () => {
  it.each([
    ['the flags every starter gives the client (CLIENT_NODE_FLAGS)', CLIENT_NODE_FLAGS, true],
    ['no flags (V8 leaves the compiler flag out of its cache check)', [] as readonly string[], true],
    [
      'a flag V8 counts in that check (a heap size): it refuses the cache and the bundle runs compiled afresh',
      ['--max-semi-space-size=4'],
      false,
    ],
  ])('takes the cache the build wrote for its bundle, or runs without it, with %s', (_, flags, cacheUsed) => {
    expect(loadInChild(join(ROOT, 'dist/client/cli.cjs'), flags)).toEqual({ cacheUsed, exports: ['main', 'warmUp'] });
  });

  it('under --enable-source-maps, runs the bundle as a module so that stack traces name the .ts lines', async () => {
    await writeFile(join(dir, 'boom.ts'), 'export function boom(): never {\n  throw new Error("boom");\n}\n');
    buildSync({
      entryPoints: [join(dir, 'boom.ts')],
      outfile: join(dir, 'boom.cjs'),
      bundle: true,
      minify: true,
      format: 'cjs',
      platform: 'node',
      sourcemap: 'linked',
    });
    await writeBundleCache(join(dir, 'boom.cjs'));
    const run = (flags: string[]): { cacheUsed: boolean; at: string } =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [
            ...flags,
            '--input-type=module',
            '-e',
            `import { loadBundle } from ${JSON.stringify(join(ROOT, 'dist/shared/util/cached-script.js'))};
             const p = loadBundle(${JSON.stringify(join(dir, 'boom.cjs'))});
             try { p.exports.boom(); } catch (e) { process.stdout.write(JSON.stringify({ cacheUsed: p.cacheUsed, at: e.stack.split('\\n')[1] })); }`,
          ],
          { encoding: 'utf8' },
        ),
      );
    expect(run([])).toEqual({ cacheUsed: true, at: expect.stringMatching(/boom\.cjs:1:\d+\)$/) });
    expect(run(['--enable-source-maps'])).toEqual({ cacheUsed: false, at: expect.stringMatching(/boom\.ts:2:\d+\)$/) });
  });

  it('still reports a bad configuration the same way (exit 2, one config line)', () => {
    let status = 0;
    let stdout = '';
    try {
      execFileSync(process.execPath, [join(ROOT, 'dist/client/main.cjs')], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, CLI_ID: 'abc' },
        encoding: 'utf8',
      });
    } catch (err) {
      const e = err as { status: number; stdout: string };
      status = e.status;
      stdout = e.stdout;
    }
    expect(status).toBe(2);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(stdout).toMatch(/ERROR action: config \| result: fail \| error: CLI_ID - "abc" is not an integer/);
  });
});

describe('the built server', () => {
  it('takes the cache that the build wrote for its bundle, loading neither pg (nor the fetch API it probes) nor a package at start', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { loadBundle } from ${JSON.stringify(join(ROOT, 'dist/shared/util/cached-script.js'))};
         import { createRequire } from 'node:module';
         const p = loadBundle(${JSON.stringify(join(ROOT, 'dist/server/cli.cjs'))});
         // piscina and pg are inside the bundle; pg's start-up probe of the fetch API would load Node's undici.
         const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => /node_modules[/]/.test(f));
         if (process.moduleLoadList.some((m) => m.includes('undici'))) loaded.push('undici');
         process.stdout.write(JSON.stringify({ cacheUsed: p.cacheUsed, exports: Object.keys(p.exports), loaded }));`,
      ],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual({ cacheUsed: true, exports: ['main', 'warmUp'], loaded: [] });
  });

  it("gives piscina a CommonJS worker (required, so no ES module loader in the worker) exporting the task handler as 'default'", () => {
    const worker = join(ROOT, 'dist/server/pool/worker.cjs');
    const bundle = readFileSync(join(ROOT, 'dist/server/cli.cjs'), 'utf8');
    expect(bundle).toContain('./pool/worker.cjs');
    // piscina is bundled, its threads started on its own worker script, bundled beside.
    expect(/__dirname,["']pool\/piscina-thread\.cjs["']\)/.test(bundle)).toBe(true);
    // ...and that script is one file, with piscina's own modules inside it.
    expect(/require\(["']\.\.?\//.test(readFileSync(join(ROOT, 'dist/server/pool/piscina-thread.cjs'), 'utf8'))).toBe(false);
    // Loading it outside a worker fails on the missing workerData, after Node took it as CommonJS.
    const out = execFileSync(
      process.execPath,
      ['-e', `try { require(${JSON.stringify(worker)}); } catch (e) { process.stdout.write(e.code ?? e.constructor.name); }`],
      { encoding: 'utf8' },
    );
    expect(out).toBe('TypeError');
    expect(readFileSync(join(ROOT, 'dist/server/pool/worker-bundle.cjs'), 'utf8')).toMatch(/^'use strict';/);
  });

  it("runs the pool worker's bundle with the code cache the build wrote in a worker thread, and its handler runs the real tasks", async () => {
    // A worker thread of a plain node, attached to a real bets file as the server attaches it.
    const dist = (f: string): string => JSON.stringify(join(ROOT, 'dist', f));
    const bets = join(dir, 'worker-cache-bets.csv');
    // The thread's script is CommonJS, as piscina's: an eval'd one would inherit --input-type=module.
    const thread = join(dir, 'worker-cache-thread.cjs');
    await writeFile(
      thread,
      `const w = require(${dist('server/pool/worker.cjs')});
       w.default({ kind: 'draw' }).then(() => process.exit(3), (e) =>
         require('node:worker_threads').parentPort.postMessage({ cacheUsed: w.cacheUsed, handler: typeof w.default, draw: e.name }));`,
    );
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { Worker } from 'node:worker_threads';
         import { ProtectedStorage } from ${dist('server/storage/protected-storage.js')};
         import { ProtectedNotificationCounter } from ${dist('server/sync/notification-counter.js')};
         const storage = ProtectedStorage.open(${JSON.stringify(bets)}, { fsync: false, next: [0] });
         const init = { storage, counter: ProtectedNotificationCounter.allocate(1), logLevel: 'info', logFormat: 'text' };
         const worker = new Worker(${JSON.stringify(thread)}, { workerData: init });
         worker.once('message', (m) => { process.stdout.write(JSON.stringify(m)); void worker.terminate(); });
         worker.once('exit', () => ProtectedStorage.close(storage));`,
      ],
      { encoding: 'utf8' },
    );
    // The draw is refused before any agency has finished: the handler runs the real task code.
    expect(JSON.parse(out)).toEqual({ cacheUsed: true, handler: 'function', draw: 'DrawTooEarlyError' });
  });
});

describe('what the built programs load (start-up cost: docs/benchmarks.md)', () => {
  it('a run without TLS, keys or metrics: neither program loads node:tls or starts an ES module; the client not node:crypto, the server not node:http', async () => {
    const data = join(dir, 'one-bet.csv');
    await writeFile(data, 'Ana,Diaz,30904465,1999-03-17,7574\n');
    const serverRecord = await recordBuiltins(dir, 'server');
    const { proc: server, port } = await startServer({
      storagePath: join(dir, 'bets.csv'),
      agencies: 1,
      env: { ...serverRecord.env, SERVER_WORKERS: '1' },
    });
    const clientRecord = await recordBuiltins(dir, 'client');
    const client = startClient({ port, id: 1, dataFile: data, env: clientRecord.env });
    expect((await client.waitExit()).code).toBe(0);
    await server.waitForAction('sorteo', 'success');
    expect((await server.stop()).code).toBe(0);
    const [clientLoaded, serverLoaded] = [(await clientRecord.read()).loaded, (await serverRecord.read()).loaded];
    for (const loaded of [clientLoaded, serverLoaded]) {
      expect(loaded).toContain('net');
      expect(loaded).not.toContain('tls');
      expect(loaded).not.toContain('internal/modules/esm/module_job');
    }
    expect(clientLoaded).not.toContain('crypto');
    expect(serverLoaded).not.toContain('http');
    expect(serverLoaded).toContain('worker_threads');
    // A pool, and piscina is not read from node_modules: it is inside the bundle.
    expect((await serverRecord.read()).files.filter((f) => f.includes(`${sep}node_modules${sep}`))).toEqual([]);
  });
});
