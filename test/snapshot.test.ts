/**
 * The client's start-up snapshot (tools/bundle.ts, CLIENT_BLOB). The build writes it, and
 * clientArgs, which every starter of the client uses, starts the client from it. Node's
 * snapshot builder has no WebAssembly, so the warm-up's rows take the JavaScript path there;
 * the deserialised program must still make its WebAssembly encoder when it first reads rows.
 * Of the code cache of Node's built-ins that Node appends to every blob, the build keeps only
 * the entries of those the program loads after it starts (tools/lib/snapshot-blob.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateAgencyFile } from '../tools/gen-data/files.js';
import { CLIENT_BLOB, CLIENT_NODE_FLAGS, NodeProcess, clientArgs } from '../tools/lib/processes.js';
import { findBuiltinCodeCache, pruneBuiltinCodeCache } from '../tools/lib/snapshot-blob.js';
import { LAZY_BUILTINS } from '../shared/util/lazy-builtin.js';
import { ROOT, baseEnv, killAll, makeTempDir, removeDir, startClient, startServer } from './helpers/processes.js';

const ROWS = 3_000;

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('snapshot');
  await generateAgencyFile({ path: join(dir, 'agency-1.csv'), agency: 1, seed: 11, rows: ROWS });
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

describe("the client's start-up snapshot", () => {
  it('is written by the build, and clientArgs starts the client from it', () => {
    expect(existsSync(join(ROOT, CLIENT_BLOB))).toBe(true);
    expect(clientArgs(ROOT)).toEqual([...CLIENT_NODE_FLAGS, '--snapshot-blob', join(ROOT, CLIENT_BLOB)]);
  });

  it('a client started from it stores every bet through a WebAssembly encoder made at run time', async () => {
    const preload = join(dir, 'count-wasm.cjs');
    const report = join(dir, 'wasm-instances.txt');
    await writeFile(
      preload,
      `let n = 0; const I = WebAssembly.Instance;
WebAssembly.Instance = function (...a) { n++; return new I(...a); };
process.on('exit', () => require('node:fs').writeFileSync(process.env.WASM_REPORT, String(n)));\n`,
    );
    const { port } = await startServer({ storagePath: join(dir, 'bets.csv'), agencies: 1 });
    const client = startClient({
      port,
      id: 1,
      dataFile: join(dir, 'agency-1.csv'),
      env: { NODE_OPTIONS: `--require ${preload}`, WASM_REPORT: report },
    });
    expect(await client.waitExit(30_000), client.lines.slice(-10).join('\n')).toEqual({ code: 0, signal: null });
    expect(client.log.find((l) => l.action === 'exit')?.fields.almacenadas).toBe(String(ROWS));
    expect(await readFile(report, 'utf8')).toBe('1');
  });

  it('a client started from it runs its timers: a server that never answers HELLO is given up at the connect timeout', async () => {
    // The build-time warm-up's timers must not leave Node's timer state behind in the snapshot
    // (tools/bundle.ts): a deadline that never fires would keep this client waiting forever.
    const silent = createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const client = startClient({ port, id: 1, dataFile: join(dir, 'agency-1.csv'), env: { CLI_SERVER_CONNECTTIMEOUT: '2s' } });
      expect((await client.waitExit(20_000)).code).toBe(1);
      expect(client.log.some((l) => l.action === 'exit' && l.result === 'fail')).toBe(true);
    } finally {
      silent.close();
    }
  });

  it("starts with none of the build's timers: no timer list left in Node's timer state", async () => {
    // A list left by the build (a cleared unreferenced timer does that) keeps its expiry of the
    // build's clock, and a program timer due after it is not scheduled until something else fires.
    const probe = join(dir, 'timer-lists.cjs');
    const report = join(dir, 'timer-lists.txt');
    await writeFile(
      probe,
      "require('node:fs').writeFileSync(process.env.TIMERS_REPORT, String(Object.keys(require('internal/timers').timerListMap).length));\n",
    );
    const client = new NodeProcess({
      name: 'client-timers',
      args: ['--expose-internals', '--require', probe, ...clientArgs(ROOT)],
      cwd: ROOT,
      env: baseEnv({ CLI_ID: '1', CLI_DATA_FILE: join(dir, 'missing.csv'), TIMERS_REPORT: report }),
    });
    expect((await client.waitExit(20_000)).code).toBe(2);
    expect(await readFile(report, 'utf8')).toBe('0');
  });

  it('without WebAssembly, as in the snapshot builder, every row takes the JavaScript path: the same bytes', async () => {
    // A process of its own: the encoder, once made, is kept for the process's life.
    const decoder = pathToFileURL(join(ROOT, 'dist/client/row-decoder.js')).href;
    const script = `
      import { readFileSync } from 'node:fs';
      const { AgencyRowDecoder } = await import(${JSON.stringify(decoder)});
      const file = readFileSync(${JSON.stringify(join(dir, 'agency-1.csv'))});
      const decode = () => {
        const d = new AgencyRowDecoder(1, (line, error) => { throw new Error(line + ': ' + error); });
        const parts = [];
        let count = 0;
        const take = () => { const b = d.take(); parts.push(Buffer.from(b.bytes.subarray(0, b.ends[b.count - 1] ?? 0))); count += b.count; };
        d.push(file); take(); d.end(); take();
        return { count, hex: Buffer.concat(parts).toString('hex') };
      };
      const wasm = globalThis.WebAssembly;
      delete globalThis.WebAssembly;
      const deleted = typeof WebAssembly === 'undefined';
      const without = decode();
      globalThis.WebAssembly = wasm;
      const withWasm = decode();
      process.stdout.write(JSON.stringify({ deleted, count: without.count, same: without.hex === withWasm.hex }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual({ deleted: true, count: ROWS, same: true });
  });
});

/** A length field of Node's blob: 64 bits, little-endian. */
const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(n, 0);
  return b;
};
const entry = (id: string, data: Buffer): Buffer => Buffer.concat([u64(id.length), Buffer.from(id), u64(data.length), data]);
const idsOf = (blob: Buffer): string[] | undefined => findBuiltinCodeCache(blob)?.entries.map((e) => e.id);

describe("Node's code cache of its built-ins in a snapshot blob (tools/lib/snapshot-blob.ts)", () => {
  const head = Buffer.from('a snapshot: metadata, V8 startup data, isolate and environment info\x00\x01');
  const fs = entry('fs', Buffer.from([1, 2, 3]));
  const undici = entry('internal/deps/undici/undici', Buffer.alloc(40, 7));
  const cache = Buffer.concat([u64(2), fs, undici]);

  it('is found where its entries end exactly at the end of the blob, and pruned to the modules kept', () => {
    const blob = Buffer.concat([head, cache]);
    expect(idsOf(blob)).toEqual(['fs', 'internal/deps/undici/undici']);
    expect(findBuiltinCodeCache(blob)?.offset).toBe(head.length);
    expect(pruneBuiltinCodeCache(blob, new Set())).toEqual(Buffer.concat([head, u64(0)]));
    expect(pruneBuiltinCodeCache(blob, new Set(['internal/deps/undici/undici', 'tls']))).toEqual(Buffer.concat([head, u64(1), undici]));
  });

  it('is not recognised when the entries do not end at the end of the blob, an id is not a module id, or two offsets parse', () => {
    expect(findBuiltinCodeCache(Buffer.concat([head, cache, Buffer.from([0])]))).toBeNull();
    expect(pruneBuiltinCodeCache(Buffer.concat([head, cache.subarray(0, cache.length - 1)]), new Set())).toBeNull();
    expect(findBuiltinCodeCache(Buffer.concat([head, u64(1), entry('fs\nx', Buffer.from([1]))]))).toBeNull();
    expect(findBuiltinCodeCache(Buffer.alloc(64))).toBeNull();
    // The last entry's data is itself a vector that ends at the end of the blob: which one is Node's?
    const inner = Buffer.concat([u64(1), entry('zlib', Buffer.from([9]))]);
    const twice = Buffer.concat([head, u64(1), entry('fs', inner)]);
    expect(idsOf(Buffer.concat([head, inner]))).toEqual(['zlib']);
    expect(findBuiltinCodeCache(twice)).toBeNull();
  });

  it('a blob Node writes holds one for each built-in; pruned, the blob starts, and a module it does not hold still loads', async () => {
    const builder = join(dir, 'builder.cjs');
    const blob = join(dir, 'small.blob');
    const lean = join(dir, 'small-lean.blob');
    await writeFile(
      builder,
      `const { startupSnapshot } = require('node:v8');
globalThis.held = require('node:path').join('a', 'b');
startupSnapshot.setDeserializeMainFunction(() => {
  const before = process.moduleLoadList.includes('NativeModule zlib');
  const zlib = require('node:zlib');
  process.stdout.write(JSON.stringify({ held, before, zlib: zlib.gunzipSync(zlib.gzipSync('bet')).toString() }));
});\n`,
    );
    await promisify(execFile)(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', builder], { cwd: dir });
    const written = await readFile(blob);
    const ids = idsOf(written) ?? [];
    expect(ids).toEqual(expect.arrayContaining(['fs', 'zlib', 'net', 'crypto', 'internal/streams/readable']));
    expect(ids.length).toBeGreaterThan(200);
    for (const keep of [[], ['zlib']]) {
      const pruned = pruneBuiltinCodeCache(written, new Set(keep));
      expect(pruned === null ? null : (findBuiltinCodeCache(pruned)?.entries.map((e) => e.id) ?? [])).toEqual(keep);
      await writeFile(lean, pruned ?? Buffer.alloc(0));
      const { stdout } = await promisify(execFile)(process.execPath, ['--snapshot-blob', lean]);
      expect(JSON.parse(stdout)).toEqual({ held: join('a', 'b'), before: false, zlib: 'bet' });
    }
  });

  it("the build keeps in the client's blob the entries of the built-ins its lazy ones load, and no other", async () => {
    expect(LAZY_BUILTINS).toEqual(expect.arrayContaining(['node:crypto', 'node:tls']));
    const ids = idsOf(await readFile(join(ROOT, CLIENT_BLOB))) ?? [];
    expect(ids).toEqual(expect.arrayContaining(['crypto', 'tls', 'internal/crypto/hash', '_tls_wrap']));
    // Held by the snapshot (the run's own), or never loaded by the client.
    for (const id of ['net', 'fs', 'dns', 'internal/streams/readable', 'zlib', 'http']) expect(ids).not.toContain(id);
  });
});
