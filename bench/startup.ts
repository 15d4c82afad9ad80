/**
 * What process start-up costs: `node -e 0` against the server's time to listen (and to its
 * first acknowledged batch, which waits for a pool worker) and the client's time to connect
 * and to exit on a one-bet file; and how many modules each entry point loads.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, encodeMessage } from '../shared/protocol/codec.js';
import { MAC_BYTES, MessageType, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { freePort } from '../shared/util/net.js';
import { clientArgs } from '../tools/lib/processes.js';
import { entryPoint, now, reapedChildrenCpuMsSince, reapedChildrenCpuS, spawnChild, stopChild, type Child } from './procs.js';
import { spreadOf, type Spread } from './stats.js';

export interface ModuleCount {
  project: number;
  packages: number;
  builtins: number;
  total: number;
  byPackage: Record<string, number>;
}

export interface StartupResult {
  nodeBareMs: Spread | null;
  serverListenMs: Spread | null;
  serverListenInlineMs: Spread | null;
  serverFirstAckMs: Spread | null;
  serverFirstAckInlineMs: Spread | null;
  serverShutdownMs: Spread | null;
  clientConfigMs: Spread | null;
  clientConnectMs: Spread | null;
  clientExitMs: Spread | null;
  /** CPU (user + system) of the whole one-bet client process, and of `node -e 0`. */
  clientCpuMs: Spread | null;
  nodeBareCpuMs: Spread | null;
  serverModules: ModuleCount | null;
  clientModules: ModuleCount | null;
}

const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, ...extra });
const isAction =
  (action: string, result = 'success') =>
  (line: string): boolean =>
    line.includes(`action: ${action} | result: ${result}`);

/** A server keeps its bets with a journal and a winners file beside them: a new run starts with none. */
function removeStorage(dir: string): void {
  for (const name of ['bets.csv', 'bets.csv.journal', 'bets.csv.winners']) rmSync(join(dir, name), { force: true });
}

function serverEnv(dir: string, port: number, workers: number | null, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return env({
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: String(port),
    SERVER_AGENCIES: '1',
    SERVER_AUTH: 'off',
    SERVER_STORAGE_PATH: join(dir, 'bets.csv'),
    LOGGING_LEVEL: 'INFO',
    ...(workers === null ? {} : { SERVER_WORKERS: String(workers) }),
    ...extra,
  });
}

/** A server on a free port, started with `flags` and `extra` env; resolves once it listens, with the listen line's arrival. */
async function listeningServer(
  dir: string,
  workers: number | null,
  repoRoot: string,
  flags: string[] = [],
  extra: Record<string, string> = {},
): Promise<{ server: Child; port: number; listenAt: number }> {
  const port = await freePort();
  const server = spawnChild({
    name: 'server',
    args: [...flags, entryPoint(repoRoot, 'server')],
    env: serverEnv(dir, port, workers, extra),
    cwd: repoRoot,
    timeoutMs: 30_000,
  });
  try {
    const listen = await server.process.waitForLine(isAction('listen'), 20_000);
    return { server, port, listenAt: listen.at };
  } catch (err) {
    await stopChild(server, 2000);
    throw err;
  }
}

/** HELLO, PROOF, then a one-bet BATCH; resolves when its BATCH_ACK arrives. */
function firstAck(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const decoder = new FrameDecoder();
    const builder = new BatchBuilder(1);
    builder.add({ agency: 1, firstName: 'Ana', lastName: 'Paz', document: '30111222', birthdate: '1990-01-02', number: 1 });
    socket.once('error', reject);
    socket.once('connect', () => {
      // HELLO, the PROOF of a client with no key, and the agency's first bet, back to back.
      socket.write(encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: 1 }));
      socket.write(encodeMessage({ type: MessageType.PROOF, mac: Buffer.alloc(MAC_BYTES) }));
      socket.write(builder.take(0));
    });
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.type === MessageType.BATCH_ACK) {
          resolve(now());
          socket.destroy();
        }
      }
    });
  });
}

async function serverOnce(
  dir: string,
  workers: number | null,
  repoRoot: string,
): Promise<{ listen: number; ack: number; shutdown: number }> {
  const { server, port, listenAt } = await listeningServer(dir, workers, repoRoot);
  try {
    const ack = await firstAck(port);
    const termAt = now();
    const exit = await stopChild(server);
    return { listen: listenAt - server.startedAt, ack: ack - server.startedAt, shutdown: exit.at - termAt };
  } finally {
    await stopChild(server, 2000);
    removeStorage(dir);
  }
}

async function clientOnce(dir: string, repoRoot: string): Promise<{ config: number; connect: number; exit: number; cpu: number }> {
  const { server, port } = await listeningServer(dir, null, repoRoot);
  try {
    const cpuBefore = reapedChildrenCpuS();
    const client = spawnChild({
      name: 'client',
      args: clientArgs(repoRoot, entryPoint(repoRoot, 'client')),
      cwd: repoRoot,
      timeoutMs: 30_000,
      env: env({ CLI_ID: '1', CLI_SERVER_ADDRESS: `127.0.0.1:${port}`, CLI_DATA_FILE: join(dir, 'one.csv'), CLI_LOG_LEVEL: 'INFO' }),
    });
    const config = client.process.waitForLine(isAction('config'), 20_000);
    const connected = client.process.waitForLine(isAction('connect'), 20_000);
    const c = await config;
    const k = await connected;
    const exit = await client.exited;
    const cpu = reapedChildrenCpuMsSince(cpuBefore);
    return { config: c.at - client.startedAt, connect: k.at - client.startedAt, exit: exit.at - client.startedAt, cpu };
  } finally {
    await stopChild(server, 2000);
    removeStorage(dir);
  }
}

function countModules(file: string): ModuleCount {
  const paths = new Set<string>();
  const builtins = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const ref = line.slice(4);
    if (ref === '') continue;
    if (ref.startsWith('node:')) builtins.add(ref);
    else paths.add(ref.startsWith('file:') ? fileURLToPath(ref) : ref);
  }
  const byPackage: Record<string, number> = {};
  let project = 0;
  for (const p of paths) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p);
    if (m === null) {
      project++;
      continue;
    }
    const name = m[1] as string;
    byPackage[name] = (byPackage[name] ?? 0) + 1;
  }
  const packages = paths.size - project;
  return { project, packages, builtins: builtins.size, total: paths.size + builtins.size, byPackage };
}

/**
 * Node's arguments that make a client record the files it required in BENCH_MODULES_OUT. A
 * client started from its start-up snapshot runs no --import preload (module-count.ts): this
 * one is CommonJS, and leaves itself out (with everything in the blob, it lists nothing).
 */
function clientModuleHook(dir: string): string[] {
  const hook = join(dir, 'module-count.cjs');
  writeFileSync(
    hook,
    "process.on('exit', () => require('node:fs').appendFileSync(process.env.BENCH_MODULES_OUT, Object.keys(require.cache).filter((k) => k !== __filename).map((k) => `cjs ${k}\\n`).join('')));\n",
  );
  return ['--require', hook];
}

async function modulesOf(dir: string, which: 'server' | 'client', repoRoot: string): Promise<ModuleCount | null> {
  const out = join(dir, `${which}-modules.txt`);
  const hook = ['--import', './dist/bench/module-count.js'];
  const { server, port } = await listeningServer(
    dir,
    null,
    repoRoot,
    which === 'server' ? hook : [],
    which === 'server' ? { BENCH_MODULES_OUT: out } : {},
  );
  try {
    if (which === 'client') {
      const client = spawnChild({
        name: 'client',
        args: [...clientModuleHook(dir), ...clientArgs(repoRoot, entryPoint(repoRoot, 'client'))],
        cwd: repoRoot,
        timeoutMs: 30_000,
        env: env({ CLI_ID: '1', CLI_SERVER_ADDRESS: `127.0.0.1:${port}`, CLI_DATA_FILE: join(dir, 'one.csv'), BENCH_MODULES_OUT: out }),
      });
      await client.exited;
    } else {
      await firstAck(port);
    }
  } finally {
    await stopChild(server, 5000);
    removeStorage(dir);
  }
  try {
    return countModules(out);
  } catch {
    return null;
  }
}

export async function measureStartup(workDir: string, repeats: number, repoRoot: string): Promise<StartupResult> {
  const dir = mkdtempSync(join(workDir, 'startup-'));
  writeFileSync(join(dir, 'one.csv'), 'Ana,Paz,30111222,1990-01-02,7574\r\n');
  try {
    const bare: number[] = [];
    const bareCpu: number[] = [];
    const pooled: Array<Awaited<ReturnType<typeof serverOnce>>> = [];
    const inline: Array<Awaited<ReturnType<typeof serverOnce>>> = [];
    const clients: Array<Awaited<ReturnType<typeof clientOnce>>> = [];
    for (let i = 0; i < repeats; i++) {
      const cpuBefore = reapedChildrenCpuS();
      const c = spawnChild({ name: 'node -e 0', args: ['-e', '0'], env: env({}), timeoutMs: 10_000 });
      bare.push((await c.exited).at - c.startedAt);
      bareCpu.push(reapedChildrenCpuMsSince(cpuBefore));
      pooled.push(await serverOnce(dir, null, repoRoot));
      inline.push(await serverOnce(dir, 0, repoRoot));
      clients.push(await clientOnce(dir, repoRoot));
    }
    return {
      nodeBareMs: spreadOf(bare, (v) => v),
      serverListenMs: spreadOf(pooled, (r) => r.listen),
      serverListenInlineMs: spreadOf(inline, (r) => r.listen),
      serverFirstAckMs: spreadOf(pooled, (r) => r.ack),
      serverFirstAckInlineMs: spreadOf(inline, (r) => r.ack),
      serverShutdownMs: spreadOf(pooled, (r) => r.shutdown),
      clientConfigMs: spreadOf(clients, (r) => r.config),
      clientConnectMs: spreadOf(clients, (r) => r.connect),
      clientExitMs: spreadOf(clients, (r) => r.exit),
      clientCpuMs: spreadOf(clients, (r) => r.cpu),
      nodeBareCpuMs: spreadOf(bareCpu, (v) => v),
      serverModules: await modulesOf(dir, 'server', repoRoot),
      clientModules: await modulesOf(dir, 'client', repoRoot),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
