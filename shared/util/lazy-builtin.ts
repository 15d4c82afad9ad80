/**
 * Node built-in modules loaded on first use instead of at start-up. Every process starts
 * from scratch (an agency client per run), and Node compiles and runs a built-in module
 * the first time it is required: `node:tls` and `node:crypto` cost a client more than its
 * whole configuration path, for a run that has no TLS and no key (docs/benchmarks.md).
 * Import the module's types with `import type`; call the getter where the value is needed.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/**
 * Every id below, for the build: the client's start-up snapshot keeps Node's code cache of the
 * built-ins these load, since its run loads them after it starts (tools/bundle.ts).
 */
const ids: string[] = [];
export const LAZY_BUILTINS: readonly string[] = ids;

function lazyBuiltin<T>(id: `node:${string}`): () => T {
  ids.push(id);
  let loaded: T | undefined;
  return () => (loaded ??= load(id) as T);
}

/** Only with TLS configured: the client's dialer, the server's gate. */
export const nodeTls = lazyBuiltin<typeof import('node:tls')>('node:tls');
/** Only with a key (the proof) or TLS files configured. */
export const nodeCrypto = lazyBuiltin<typeof import('node:crypto')>('node:crypto');
/** Only with a server named by host name: `net` loads it for the lookup; the client loads it first (client/tuning.ts). */
export const nodeDns = lazyBuiltin<typeof import('node:dns')>('node:dns');
