/**
 * Bundles each entry point that `tsc` compiled into one minified file in place, so that a
 * process start reads and compiles one file instead of ~400 modules (see docs/benchmarks.md).
 * The compiled tree stays as it is for tests; only the entry files are replaced.
 */
import { build } from 'esbuild';

const ENTRIES = ['dist/server/main.js', 'dist/server/pool/worker.js', 'dist/client/main.js', 'dist/tools/healthcheck.js'];

// CommonJS dependencies (pino, piscina) call require() on Node built-ins inside the ESM bundle.
const banner = "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);";

const { existsSync, renameSync, writeFileSync } = await import('node:fs');
for (const entry of ENTRIES.filter((e) => existsSync(e))) {
  // Written beside and renamed over the entry: a process starting meanwhile reads the old
  // file or the new one, never half of one.
  const result = await build({
    entryPoints: [entry],
    outfile: entry,
    allowOverwrite: true,
    write: false,
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    banner: { js: banner },
    // piscina starts workers from its own files, found through __dirname: keep it a package.
    external: ['piscina'],
    logLevel: 'warning',
    // Chains tsc's maps: with --enable-source-maps a stack trace names server/*.ts lines.
    sourcemap: 'linked',
  });
  // The map first, then the code that links to it, each renamed into place.
  const files = [...result.outputFiles].sort((a, b) => Number(b.path.endsWith('.map')) - Number(a.path.endsWith('.map')));
  for (const file of files) {
    const tmp = `${file.path}.${process.pid}.tmp`;
    writeFileSync(tmp, file.contents);
    renameSync(tmp, file.path);
  }
}
