/**
 * Build step of tools/bundle.ts, run in a process of its own so that it can be started with
 * the Node flags of the program whose cache it writes: V8 takes a code cache only under the
 * flags it was written with (some flags, such as the heap's, are part of that check).
 * Usage: node [FLAGS] dist/tools/write-cache.js BUNDLE [WARM_UP_EXPORT]
 * The warm-up may be async (a whole run over loopback) and bounds its own run; one that fails,
 * or still runs after WARM_UP_TIMEOUT_MS (the backstop), only makes the cache smaller, and the
 * process exits once the cache is written, whatever the warm-up left open.
 */
import { writeSync } from 'node:fs';
import { withDeadline } from '../shared/util/async.js';
import { writeBundleCache } from '../shared/util/cached-script.js';

const WARM_UP_TIMEOUT_MS = 30_000;

const [bundle, warmUp] = process.argv.slice(2);
if (bundle === undefined) {
  process.stderr.write('usage: node [FLAGS] dist/tools/write-cache.js BUNDLE [WARM_UP_EXPORT]\n');
  process.exit(2);
}
await writeBundleCache(bundle, async (exports) => {
  if (warmUp === undefined) return;
  // A warm-up that fails (no loopback, say) only makes the cache smaller; one that throws
  // outside its promise (an uncaught exception) fails the build: a bug to fix, not to hide.
  try {
    const run = (exports[warmUp] as () => unknown)();
    await withDeadline(Promise.resolve(run), WARM_UP_TIMEOUT_MS, () => new Error(`not done within ${WARM_UP_TIMEOUT_MS} ms`));
  } catch (err) {
    // Synchronous: process.exit below must not cut the line short on a piped stderr.
    writeSync(2, `bundle: ${bundle}'s warm-up failed (${err instanceof Error ? err.message : String(err)}); its code cache covers less\n`);
  }
});
process.exit(0);
