/**
 * Build step of tools/bundle.ts, run in a process of its own so that it can be started with
 * the Node flags of the program whose cache it writes: V8 takes a code cache only under the
 * flags it was written with (some flags, such as the heap's, are part of that check).
 * Usage: node [FLAGS] dist/tools/write-cache.js BUNDLE [WARM_UP_EXPORT]
 * The warm-up may be async (a whole run over loopback); one that fails or takes longer than
 * WARM_UP_TIMEOUT_MS only makes the cache smaller, and the process exits once the cache is
 * written, whatever the warm-up left open.
 */
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
  // A warm-up that fails (an odd local config file, no loopback) only makes the cache smaller.
  try {
    const run = (exports[warmUp] as () => void | Promise<void>)();
    await withDeadline(Promise.resolve(run), WARM_UP_TIMEOUT_MS, () => new Error(`not done within ${WARM_UP_TIMEOUT_MS} ms`));
  } catch (err) {
    process.stderr.write(`bundle: ${bundle}'s warm-up failed (${(err as Error).message}); its code cache covers less\n`);
  }
});
process.exit(0);
