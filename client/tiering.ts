/**
 * V8's tiering, tuned for the agency client: a process that lives for one run of seconds, where
 * V8's defaults (made for long-lived pages and servers) spend more CPU compiling optimised code
 * than that code saves. Both budgets are raised, so that only a long run pays for the
 * optimising compilers (docs/benchmarks.md, seventh round):
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

/** Call once, at the start of a run (client/cli.ts), never at build time (the warm-up). */
export function tuneTiering(run: RunNeeds): void {
  if (run.servers.some((s) => isIP(s.host) === 0)) load('node:dns');
  if (run.key !== null || run.tls !== null) nodeCrypto();
  if (run.tls !== null) nodeTls();
  for (const flag of CLIENT_TIERING_FLAGS) setFlagsFromString(flag);
}
