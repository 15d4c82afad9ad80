/**
 * Runs a CommonJS bundle with a V8 code cache: the bytecode of its top level and of every
 * function its module initialisation ran, written once at build time (tools/bundle.ts) and
 * read at each start instead of compiling the bundle again (see docs/benchmarks.md).
 * V8 checks the cache against the source, its own version and flags; a cache that does not
 * match is ignored and the bundle is compiled as usual, so a stale cache costs time, never
 * correctness.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** The bundle's module object once its top level has run. */
export interface LoadedBundle {
  exports: Record<string, unknown>;
  /** Whether V8 took the cache (false: none, or it did not match). */
  cacheUsed: boolean;
}

export function cachePathOf(bundle: string): string {
  return `${bundle}.cache`;
}

function compile(bundle: string, cachedData: Buffer | undefined): Script {
  const source = readFileSync(bundle, 'utf8');
  // The CommonJS wrapper on one line with the source's first line, so line numbers hold.
  return new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: bundle, cachedData });
}

function run(script: Script, bundle: string): Record<string, unknown> {
  const module = { exports: {} as Record<string, unknown> };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  return module.exports;
}

/**
 * Compiles `bundle` (with its cache when there is one) and runs its top level. Under
 * --enable-source-maps it is require()d instead: Node 20 maps stack traces of modules, not
 * of vm scripts, so the cache is traded for stack traces that name the .ts lines.
 */
export function loadBundle(bundle: string): LoadedBundle {
  if (process.sourceMapsEnabled) return { exports: createRequire(bundle)(bundle) as Record<string, unknown>, cacheUsed: false };
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cachePathOf(bundle));
  } catch {
    cachedData = undefined;
  }
  const script = compile(bundle, cachedData);
  return { exports: run(script, bundle), cacheUsed: cachedData !== undefined && !script.cachedDataRejected };
}

/**
 * Build time: runs the bundle's top level (module initialisation only: the bundle must have
 * no other side effect when loaded), then `warmUp` with its exports, awaited (every function
 * that ran by then, however lazily V8 compiled it, is in the cache), and writes the code cache
 * beside the bundle, atomically.
 */
export async function writeBundleCache(
  bundle: string,
  warmUp: (exports: Record<string, unknown>) => void | Promise<void> = () => {},
): Promise<number> {
  const script = compile(bundle, undefined);
  await warmUp(run(script, bundle));
  const data = script.createCachedData();
  const path = cachePathOf(bundle);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
  return data.length;
}
