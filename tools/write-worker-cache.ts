/**
 * Build step of tools/bundle.ts: the code cache of the pool worker's bundle. A worker compiles
 * its bundle in an isolate of its own, so the server's cache (cli.cjs.cache) never reaches it.
 * The cache is written inside a worker thread, the bundle's only home: its top level attaches
 * to `workerData`, so this gives it a real WorkerInit (a bets file, journal and counter in a
 * temporary directory) and runs one lottery's tasks through its handler, as piscina would: a
 * store of two bets (one a winner), the agency's FINISHED, the draw. Every function they ran
 * is in the cache.
 * Usage: node dist/tools/write-worker-cache.js BUNDLE
 */
import { mkdtempSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { writeBundleCache } from '../shared/util/cached-script.js';
import { TaskKind, type StoreBatchesResult, type Task, type TaskResult, type WorkerInit } from '../server/pool/tasks.js';
import { ProtectedStorage } from '../server/storage/protected-storage.js';
import { ProtectedNotificationCounter } from '../server/sync/notification-counter.js';
import { WARM_UP_AGENCY, warmUpBets } from '../server/warm-up.js';

/** The build-time warm-up's two bets (server/warm-up.ts), in shared memory as a store task carries them. */
function twoBets(): { bytes: Uint8Array; count: number; end: number } {
  const { bytes, ends } = warmUpBets();
  const end = ends.at(-1) ?? 0;
  const shared = new Uint8Array(new SharedArrayBuffer(end));
  shared.set(bytes.subarray(0, end));
  return { bytes: shared, count: ends.length, end };
}

/** In the writer thread (its workerData is the bundle's WorkerInit): the bundle's handler through one lottery, then the cache. */
async function writeInThread(bundle: string, init: WorkerInit): Promise<void> {
  await writeBundleCache(bundle, async (exports) => {
    const run = exports.default as (task: Task) => Promise<TaskResult>;
    const agency = WARM_UP_AGENCY;
    const { bytes, count, end } = twoBets();
    const stored = (await run({
      kind: TaskKind.STORE_BATCHES,
      bytes,
      runs: [{ agency, batches: [{ first: 0, count, start: 0, end }] }],
    })) as StoreBatchesResult;
    if (stored.runs[0]?.[0]?.ok !== true) throw new Error('the warm-up batch was refused');
    await run({ kind: TaskKind.RECORD_FINISHED, agency });
    new ProtectedNotificationCounter(init.counter).markFinished(agency);
    await run({ kind: TaskKind.DRAW });
  });
}

/** On the main thread: the files and shared memory the worker attaches to, and the thread. */
async function writeFromMain(bundle: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'loteria-worker-cache-'));
  const storage = ProtectedStorage.open(join(dir, 'bets.csv'), { fsync: false, next: [0] });
  try {
    const init: WorkerInit = {
      storage,
      counter: ProtectedNotificationCounter.allocate(WARM_UP_AGENCY),
      logLevel: 'info',
      logFormat: 'text',
    };
    const worker = new Worker(new URL(import.meta.url), { workerData: init, argv: [bundle] });
    const code = await new Promise<number>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`the writer thread exited with ${code}`);
  } finally {
    ProtectedStorage.close(storage);
    rmSync(dir, { recursive: true, force: true });
  }
}

const [bundle] = process.argv.slice(2);
if (bundle === undefined) {
  process.stderr.write('usage: node dist/tools/write-worker-cache.js BUNDLE\n');
  process.exit(2);
} else if (isMainThread) {
  try {
    await writeFromMain(bundle);
  } catch (err) {
    // Without a cache the worker compiles its bundle at each start: slower, still correct.
    writeSync(2, `bundle: ${bundle}'s code cache was not written (${err instanceof Error ? err.message : String(err)})\n`);
  }
} else {
  await writeInThread(bundle, workerData as WorkerInit);
}
