/**
 * The agency client's process, tuned for what it is: one run of seconds, often a hundred such
 * processes on one machine (docs/benchmarks.md, seventh round). Node's and V8's defaults are
 * made for long-lived servers and pages: four threads in libuv's pool, and optimising
 * compilers that in a short run cost more CPU than their code saves.
 *
 * V8's tiering budgets are raised, so that only a long run pays for the optimising compilers:
 * - `--interrupt-budget`: how much a JavaScript function runs before V8 considers optimising
 *   it with TurboFan (8× the default of Node 20's V8, 66 KB);
 * - `--wasm-tiering-budget`: the same for the WebAssembly row encoder (client/wasm-rows.ts),
 *   which V8 reads when it compiles that module: the module must be compiled after the change
 *   (it is, on the first row run), or the budget does not apply to it.
 *
 * Invariant: the flags change only at run time, after the bundle and the built-ins its run
 * needs are loaded. V8 checks every code cache against a hash of its flags: the same flags on
 * the command line would make each start refuse Node's cache of its built-ins and the
 * bundle's own (shared/util/cached-script.ts), and a built-in first loaded after the change is
 * compiled from its source. So `tuneTiering` first loads the built-ins the configured run
 * loads later: `dns` for a server named by host name, `crypto` for a key or TLS, `tls` for
 * TLS. What only an error path loads (a message's formatting) may still compile from source.
 * Started from its start-up snapshot, the client finds there Node's code cache of exactly the
 * built-ins that these load beyond what the snapshot holds (tools/bundle.ts).
 */
import { isIP } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { nodeCrypto, nodeDns, nodeTls } from '../shared/util/lazy-builtin.js';

export const CLIENT_TIERING_FLAGS: readonly string[] = ['--interrupt-budget=540672', '--wasm-tiering-budget=200000000'];

/** What of the client's configuration decides its threads and the built-ins its run loads. */
export interface RunNeeds {
  servers: readonly { host: string }[];
  key: unknown;
  tls: unknown;
}

const named = (run: Pick<RunNeeds, 'servers'>): boolean => run.servers.some((s) => isIP(s.host) === 0);

/**
 * Fewer threads in libuv's pool than its four (unless UV_THREADPOOL_SIZE holds a positive
 * number: libuv reads an empty or non-numeric value as one thread): the run reads one file at
 * a time, and each thread is a clone and a stack to fault in. A second thread when a server is
 * named by host name: a lookup holds its thread until the resolver answers or times out, and
 * libuv runs lookups (its "slow" work) on at most half of the threads, rounded up; with two,
 * one thread is always left for the file's reads.
 *
 * libuv reads the variable when its pool starts, on the process's first asynchronous file,
 * lookup or crypto operation: call this before any. The built client's stub reads its bundle
 * synchronously, so its first one is checking the data file (client/cli.ts); the unbundled
 * entry (client/main.cts) starts the pool while Node's ES module loader reads the modules.
 */
export function tuneThreadPool(run: Pick<RunNeeds, 'servers'>): void {
  if (!(Number(process.env.UV_THREADPOOL_SIZE) >= 1)) process.env.UV_THREADPOOL_SIZE = named(run) ? '2' : '1';
}

/** Call once, at the start of a run (client/cli.ts), never at build time (the warm-up). */
export function tuneTiering(run: RunNeeds): void {
  if (named(run)) nodeDns();
  if (run.key !== null || run.tls !== null) nodeCrypto();
  if (run.tls !== null) nodeTls();
  for (const flag of CLIENT_TIERING_FLAGS) setFlagsFromString(flag);
}
