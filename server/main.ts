/**
 * Server entry point: `node dist/server/main.js`. Built, this file is replaced by a stub that
 * runs cli.ts's bundle with its code cache (tools/bundle.ts); unbundled, it runs cli.ts.
 */
import { main } from './cli.js';

await main();
