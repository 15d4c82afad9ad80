/**
 * Client entry point: `node dist/client/main.cjs`. CommonJS, so that Node starts it without
 * its ES module loader (docs/benchmarks.md). Built, this file is replaced by a stub that runs
 * cli.ts's bundle with its code cache (tools/bundle.ts); unbundled, it imports cli.ts.
 */
void import('./cli.js').then(({ main }) => main());
