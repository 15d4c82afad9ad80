/**
 * Bundles each entry point that `tsc` compiled into one minified file in place, so that a
 * process start reads and compiles one file instead of ~400 modules (see docs/benchmarks.md).
 * The client, started once per agency, goes further: its program (client/cli.ts) becomes a
 * CommonJS bundle with a V8 code cache beside it (shared/util/cached-script.ts), and
 * dist/client/main.js a stub that runs it. The compiled tree stays as it is for tests; only
 * the entry files (and the client's bundle and cache) are written.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type BuildOptions, build } from 'esbuild';
import { writeBundleCache } from '../shared/util/cached-script.js';

const ENTRIES = ['dist/server/main.js', 'dist/server/pool/worker.js', 'dist/tools/healthcheck.js'];
const CLIENT_PROGRAM = 'dist/client/cli.js';
const CLIENT_BUNDLE = 'dist/client/cli.cjs';
const CLIENT_MAIN = 'dist/client/main.js';

// CommonJS dependencies (pino, piscina) call require() on Node built-ins inside an ESM bundle.
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
  // piscina starts workers from its own files, found through __dirname: keep it a package.
  await emit({ entryPoints: [entry], outfile: entry, allowOverwrite: true, format: 'esm', banner: { js: banner }, external: ['piscina'] });
}

if (existsSync(CLIENT_PROGRAM)) {
  await emit({ entryPoints: [CLIENT_PROGRAM], outfile: CLIENT_BUNDLE, format: 'cjs' });
  // The cache matches the bundle's bytes: written after it, before the stub that reads both.
  writeBundleCache(resolve(CLIENT_BUNDLE), (program) => {
    // A warm-up that fails (an odd local client/config.yaml, say) only makes the cache smaller.
    try {
      (program.warmUp as () => void)();
    } catch (err) {
      process.stderr.write(`bundle: the client's warm-up failed (${(err as Error).message}); its code cache covers less\n`);
    }
  });
  await emit({
    stdin: {
      contents: [
        "import { fileURLToPath } from 'node:url';",
        "import { loadBundle } from '../shared/util/cached-script.js';",
        "const program = loadBundle(fileURLToPath(new URL('./cli.cjs', import.meta.url)));",
        'await program.exports.main();',
      ].join('\n'),
      resolveDir: resolve('dist/client'),
      sourcefile: 'main.js',
    },
    outfile: CLIENT_MAIN,
    allowOverwrite: true,
    format: 'esm',
    sourcemap: false,
  });
}
