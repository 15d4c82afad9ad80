/**
 * Bundles each entry point that `tsc` compiled into one minified file in place, so that a
 * process start reads and compiles one file instead of ~400 modules (see docs/benchmarks.md).
 * The client (started once per agency) and the server go further: each program (client/cli.ts,
 * server/cli.ts) becomes a CommonJS bundle with a V8 code cache beside it
 * (shared/util/cached-script.ts), and its main.cjs a stub that runs it. The compiled tree stays
 * as it is for tests; only the entry files (and the programs' bundles and caches) are written.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { type BuildOptions, type Plugin, build } from 'esbuild';
import { CLIENT_BLOB, CLIENT_NODE_FLAGS } from './lib/processes.js';
import { LAZY_BUILTINS } from '../shared/util/lazy-builtin.js';
import { pruneBuiltinCodeCache } from './lib/snapshot-blob.js';

const ENTRIES = ['dist/tools/healthcheck.js'];

// CommonJS dependencies call require() on Node built-ins inside an ESM bundle.
const banner = "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);";

const common: BuildOptions = {
  write: false,
  bundle: true,
  minify: true,
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  // Chains tsc's maps: with --enable-source-maps a stack trace names server/*.ts lines.
  sourcemap: 'linked',
};

/**
 * Writes esbuild's files beside their targets and renames them over: a process starting
 * meanwhile reads the old file or the new one, never half of one. The map goes first, then
 * the code that links to it.
 */
async function emit(options: BuildOptions): Promise<void> {
  const result = await build({ ...common, ...options });
  const files = [...result.outputFiles!].sort((a, b) => Number(b.path.endsWith('.map')) - Number(a.path.endsWith('.map')));
  for (const file of files) {
    const tmp = `${file.path}.${process.pid}.tmp`;
    writeFileSync(tmp, file.contents);
    renameSync(tmp, file.path);
  }
}

for (const entry of ENTRIES.filter((e) => existsSync(e))) {
  await emit({ entryPoints: [entry], outfile: entry, allowOverwrite: true, format: 'esm', banner: { js: banner } });
}

/** import.meta.url, which a CommonJS bundle lacks: the bundle's own URL (bet-pool.ts finds the worker by it). */
const importMetaUrl: BuildOptions = {
  define: { 'import.meta.url': '__bundleUrl' },
  // The directive first: a banner before esbuild's own "use strict" would leave the bundle sloppy.
  banner: { js: "'use strict';\nvar __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
};

/**
 * A CommonJS stub of a few lines, bundled with what it imports, with no map: `dir`/`name`. A
 * map left beside it from when the file was a bundle would name the wrong lines, so it goes.
 */
async function emitStub(dir: string, name: string, lines: readonly string[]): Promise<void> {
  const outfile = `${dir}/${name}`;
  await emit({
    stdin: { contents: lines.join('\n'), resolveDir: resolve(dir), sourcefile: name },
    outfile,
    allowOverwrite: true,
    format: 'cjs',
    sourcemap: false,
  });
  rmSync(`${outfile}.map`, { force: true });
}

/**
 * piscina is bundled into the server: resolving and compiling its 14 files was on the start's
 * path to listen (docs/benchmarks.md, tenth round). It starts each thread on
 * `resolve(__dirname, 'worker.js')`: in the bundle, a path beside cli.cjs that does not exist.
 * The plugin points that one call at PISCINA_THREAD, piscina's own worker bundled there
 * (piscinaThread); a piscina that no longer holds the call exactly once fails the build.
 */
const PISCINA_THREAD = 'pool/piscina-thread.cjs';
const PISCINA_DIST = dirname(createRequire(import.meta.url).resolve('piscina'));
const PISCINA_THREAD_CALL = "(0, node_path_1.resolve)(__dirname, 'worker.js')";

const piscinaThreadPath: Plugin = {
  name: 'piscina-thread-path',
  setup(b) {
    b.onLoad({ filter: /[\\/]piscina[\\/]dist[\\/]index\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const calls = source.split(PISCINA_THREAD_CALL).length - 1;
      if (calls !== 1)
        throw new Error(`${args.path} holds ${calls} calls ${PISCINA_THREAD_CALL} (expected 1): update tools/bundle.ts for this piscina`);
      return { contents: source.replace(PISCINA_THREAD_CALL, `(0, node_path_1.resolve)(__dirname, '${PISCINA_THREAD}')`), loader: 'js' };
    });
  },
};

/** piscina's worker script, bundled (one file to read in each thread) where the server's bundle starts it. */
async function piscinaThread(dir: string): Promise<void> {
  // @napi-rs/nice is an optional dependency, loaded only for a niceIncrement (the server sets none).
  await emit({
    entryPoints: [join(PISCINA_DIST, 'worker.js')],
    outfile: `${dir}/${PISCINA_THREAD}`,
    format: 'cjs',
    external: ['@napi-rs/nice'],
  });
}

/**
 * The pool's worker, CommonJS: piscina require()s it (an ES module would start Node's ES
 * module loader in every worker); tsc's worker.js stays for the unbundled tree. Like the
 * programs, it is a bundle with its own code cache (each worker compiles in an isolate of its
 * own), written in a worker thread (tools/write-worker-cache.ts), and worker.cjs a stub that
 * loads it and hands piscina its handler, and whether the cache was taken (for the tests).
 */
async function cachedWorker(dir: string): Promise<void> {
  const source = `${dir}/worker.js`;
  if (!existsSync(source)) return;
  const bundle = `${dir}/worker-bundle.cjs`;
  await emit({ entryPoints: [source], outfile: bundle, format: 'cjs', external: ['piscina'], ...importMetaUrl });
  execFileSync(process.execPath, ['dist/tools/write-worker-cache.js', resolve(bundle)], { stdio: 'inherit' });
  await emitStub(dir, 'worker.cjs', [
    "import { loadBundle } from '../../shared/util/cached-script.js';",
    "const tasks = loadBundle(require('node:path').join(__dirname, 'worker-bundle.cjs'));",
    'export default tasks.exports.default;',
    'export const cacheUsed = tasks.cacheUsed;',
  ]);
}

/**
 * `dir`/cli.js becomes `dir`/cli.cjs with its code cache, and `dir`/main.cjs the stub that
 * runs its exported main(). `warmUp` names an export run after the module initialisation at
 * build time, so that what it compiles is in the cache too; `flags` are the Node flags the
 * program runs with (the cache is taken only under them).
 */
async function cachedProgram(dir: string, warmUp: string | null, flags: readonly string[]): Promise<void> {
  const program = `${dir}/cli.js`;
  if (!existsSync(program)) return;
  const bundle = `${dir}/cli.cjs`;
  await emit({ entryPoints: [program], outfile: bundle, format: 'cjs', plugins: [piscinaThreadPath], ...importMetaUrl });
  // The cache matches the bundle's bytes: written after it, before the stub that reads both,
  // by a process with the program's own Node flags (tools/write-cache.ts).
  execFileSync(process.execPath, [...flags, 'dist/tools/write-cache.js', resolve(bundle), ...(warmUp === null ? [] : [warmUp])], {
    stdio: 'inherit',
  });
  // CommonJS, like the bundle: an ES module entry would start Node's ES module loader too.
  await emitStub(dir, 'main.cjs', [
    "import { loadBundle } from '../shared/util/cached-script.js';",
    "const program = loadBundle(require('node:path').join(__dirname, 'cli.cjs'));",
    'void program.exports.main();',
  ]);
  // The entry point was main.js before it was CommonJS: a stale one would run an older build.
  rmSync(`${dir}/main.js`, { force: true });
  rmSync(`${dir}/main.js.map`, { force: true });
}

/**
 * The client's start-up snapshot (CLIENT_BLOB): Node deserialises the bundle with its module
 * initialisation done and the functions of one whole run compiled, Node's built-in ones
 * included, which a code cache cannot hold (docs/benchmarks.md, eighth round). Node takes a
 * blob only from the build of Node that wrote it, so it is written here, by the Node that
 * runs the client (the Docker build stage uses the runtime's image). The builder has no
 * WebAssembly: the warm-up's rows take the JavaScript path there (client/wasm-rows.ts). The
 * blob keeps Node's code cache only for the built-ins its program loads after it starts. A
 * warm-up that fails, or a blob that does not start, leaves no blob, and clientArgs() falls
 * back to main.cjs.
 */
async function clientSnapshot(dir: string): Promise<void> {
  const entry = `${dir}/snapshot.cjs`;
  if (!existsSync(`${dir}/cli.cjs`)) return;
  await emitStub(dir, 'snapshot.cjs', [
    "import { join } from 'node:path';",
    "import { startupSnapshot } from 'node:v8';",
    "import { loadBundle } from '../shared/util/cached-script.js';",
    "const program = loadBundle(join(__dirname, 'cli.cjs'));",
    // A timer that fires last: Node's timers keep their next expiry across clearTimeout, and a
    // stale one in the snapshot would keep the program's timers from being scheduled. (A
    // cleared unreferenced timer also leaves its list behind: the client has none.)
    'program.exports.warmUp().then(() => new Promise((resolve) => setTimeout(resolve, 1))).catch((err) => {',
    "  process._rawDebug('the warm-up failed: ' + (err instanceof Error ? err.message : String(err)));",
    '  process.exit(1);',
    '});',
    'startupSnapshot.setDeserializeMainFunction(() => void program.exports.main());',
  ]);
  const blob = resolve(CLIENT_BLOB);
  const tmp = `${blob}.${process.pid}.tmp`;
  // Node refuses a blob under other V8 flags (exit 14): none may come from NODE_OPTIONS.
  const env = { ...process.env, NODE_OPTIONS: undefined };
  try {
    // --no-warnings: the builder warns that it has not verified every built-in the bundle loads.
    execFileSync(process.execPath, [...CLIENT_NODE_FLAGS, '--no-warnings', '--snapshot-blob', tmp, '--build-snapshot', entry], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    });
    const failure = notStarting(tmp);
    if (failure !== null) throw new Error(`the blob did not start its program (${failure})`);
    pruneCodeCache(tmp);
    renameSync(tmp, blob);
  } catch (err) {
    rmSync(blob, { force: true });
    process.stderr.write(
      `bundle: no start-up snapshot for the client (${(err as Error).message.split('\n')[0]}); it starts from main.cjs\n`,
    );
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Keeps in the blob at `path` Node's code cache of the built-ins its program loads after it
 * starts, and no other (tools/lib/snapshot-blob.ts), when the blob so pruned starts; otherwise
 * leaves the blob whole and says why.
 */
function pruneCodeCache(path: string): void {
  const lean = `${path}.lean`;
  try {
    const pruned = pruneBuiltinCodeCache(readFileSync(path), new Set(loadedAfterStart(path)));
    if (pruned === null) throw new Error("the blob's layout was not recognised");
    writeFileSync(lean, pruned);
    const failure = notStarting(lean);
    if (failure !== null) throw new Error(`the pruned blob did not start: ${failure}`);
    renameSync(lean, path);
  } catch (err) {
    const why = (err as Error).message.split('\n')[0];
    process.stderr.write(`bundle: the client's start-up snapshot keeps all of Node's code cache of its built-ins (${why})\n`);
  } finally {
    rmSync(lean, { force: true });
  }
}

/**
 * The built-in modules that the program started from `blob` loads when it first uses those it
 * loads lazily (LAZY_BUILTINS: TLS's, the key's proof's), beyond those the snapshot holds: a
 * preload loads them, lists what that added, and exits before the program runs.
 */
function loadedAfterStart(blob: string): string[] {
  const probe = `${blob}.probe.cjs`;
  writeFileSync(
    probe,
    `'use strict';
const held = new Set(process.moduleLoadList);
for (const id of ${JSON.stringify(LAZY_BUILTINS)}) require(id);
const added = process.moduleLoadList.filter((m) => !held.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13));
require('node:fs').writeSync(1, JSON.stringify(added));
process.exit(0);
`,
  );
  try {
    const run = spawnSync(process.execPath, [...CLIENT_NODE_FLAGS, '--require', probe, '--snapshot-blob', blob], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (run.status !== 0) throw new Error(`listing the built-ins loaded after start failed (exit ${run.status ?? run.signal})`);
    return JSON.parse(run.stdout) as string[];
  } finally {
    rmSync(probe, { force: true });
  }
}

/** Why `blob` does not start its program, or null when it does: the program refuses a missing data file (exit 2, EXIT_CONFIG). */
function notStarting(blob: string): string | null {
  const check = spawnSync(process.execPath, [...CLIENT_NODE_FLAGS, '--snapshot-blob', blob], {
    env: { PATH: process.env.PATH, CLI_ID: '1', CLI_DATA_FILE: `${blob}.missing` },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return check.status === 2 ? null : `exit ${check.status ?? check.signal}`;
}

// A blob left from an earlier build would run an older program if this one fails before its own.
rmSync(CLIENT_BLOB, { force: true });
await cachedProgram('dist/client', 'warmUp', CLIENT_NODE_FLAGS);
await clientSnapshot('dist/client');
// The server's warm-up runs a pool: its thread's scripts come first.
await cachedWorker('dist/server/pool');
await piscinaThread('dist/server');
await cachedProgram('dist/server', 'warmUp', []);
