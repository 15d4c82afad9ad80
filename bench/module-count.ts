/**
 * Preloaded with `node --import ./dist/bench/module-count.js` when BENCH_MODULES_OUT is set:
 * records every module the process loads, ES modules through a loader hook (which runs on
 * its own thread, hence the file) and CommonJS ones from require.cache at exit.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const out = process.env.BENCH_MODULES_OUT;
if (out !== undefined && out !== '') {
  register('./module-hook.js', import.meta.url, { data: { out } });
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    const lines = Object.keys(require.cache)
      .map((k) => `cjs ${k}\n`)
      .join('');
    appendFileSync(out, lines);
  });
}
