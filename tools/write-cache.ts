/**
 * Build step of tools/bundle.ts, run in a process of its own so that it can be started with
 * the Node flags of the program whose cache it writes: V8 takes a code cache only under the
 * flags it was written with (some flags, such as the heap's, are part of that check).
 * Usage: node [FLAGS] dist/tools/write-cache.js BUNDLE [WARM_UP_EXPORT]
 */
import { writeBundleCache } from '../shared/util/cached-script.js';

const [bundle, warmUp] = process.argv.slice(2);
if (bundle === undefined) {
  process.stderr.write('usage: node [FLAGS] dist/tools/write-cache.js BUNDLE [WARM_UP_EXPORT]\n');
  process.exit(2);
}
writeBundleCache(bundle, (exports) => {
  if (warmUp === undefined) return;
  // A warm-up that fails (an odd local client/config.yaml, say) only makes the cache smaller.
  try {
    (exports[warmUp] as () => void)();
  } catch (err) {
    process.stderr.write(`bundle: ${bundle}'s warm-up failed (${(err as Error).message}); its code cache covers less\n`);
  }
});
