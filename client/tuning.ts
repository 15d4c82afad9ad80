/**
 * The agency client's process, tuned for what it is: one run of seconds, often a hundred such
 * processes on one machine (docs/benchmarks.md, seventh round). Node's and V8's defaults are
 * made for long-lived servers and pages: four threads in libuv's pool, and optimising
 * compilers that in a short run cost more CPU than their code saves.
 *
 * V8's tiering budgets are raised, so that only a long run pays for the optimising compilers:
 * - `--interrupt-budget`: how much a JavaScript function runs before V8 considers optimising
 *   it with TurboFan (V8 11's default is 132 KB);
 * - `--wasm-tiering-budget`: the same for the WebAssembly row encoder (client/wasm-rows.ts),
 *   which V8 reads when it compiles that module; at this budget the encoder's loop tiers up
 *   after some 40,000 rows instead of a few hundred.
 *
 * Invariant: the flags change only at run time, after the bundle and the built-ins its run
 * needs are loaded. V8 checks every code cache against a hash of its flags: the same flags on
 * the command line would make each start refuse Node's cache of its built-ins and the
 * bundle's own (shared/util/cached-script.ts), and a built-in first loaded after the change is
 * compiled from its source. So `tuneTiering` first loads the built-ins the configured run
 * loads later: `dns` for a server named by host name, `crypto` for a key or TLS, `tls` for
 * TLS. What only an error path loads (a message's formatting) may still compile from source.
 */
import { isIP } from 'node:net';
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { nodeCrypto, nodeTls } from '../shared/util/lazy-builtin.js';

export const CLIENT_TIERING_FLAGS: readonly string[] = ['--interrupt-budget=540672', '--wasm-tiering-budget=200000000'];

/** What of the client's configuration decides which built-ins its run loads. */
export interface RunNeeds {
  servers: readonly { host: string }[];
  key: unknown;
  tls: unknown;
}

const load = createRequire(import.meta.url);

/**
 * One thread in libuv's pool instead of four (unless UV_THREADPOOL_SIZE says otherwise): the
 * run uses the pool for one file read at a time (and a host name's lookup), and each thread
 * is a clone and a stack to fault in. libuv reads the variable when the pool starts, on the
 * process's first file operation: call this before any.
 */
export function tuneThreadPool(): void {
  process.env.UV_THREADPOOL_SIZE ??= '1';
}

/** Call once, at the start of a run (client/cli.ts), never at build time (the warm-up). */
export function tuneTiering(run: RunNeeds): void {
  if (run.servers.some((s) => isIP(s.host) === 0)) load('node:dns');
  if (run.key !== null || run.tls !== null) nodeCrypto();
  if (run.tls !== null) nodeTls();
  for (const flag of CLIENT_TIERING_FLAGS) setFlagsFromString(flag);
}
