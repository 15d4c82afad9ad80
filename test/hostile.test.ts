/**
 * Attacks on a real server process on 127.0.0.1 with authentication on, each while (or before)
 * the five real clients run: wrong, borrowed, replayed, missing and late proofs; an
 * unauthenticated peer trying to poison the sequence, finish early or read winners; a takeover
 * while the old connection is half-open; floods of connections that never prove anything; a
 * PING flood that never reads (RSS sampled from /proc); the client's report of an ERROR; TLS.
 * The attackers use other loopback sources (127.0.0.2, ...) where per-source limits matter.
 * Expected counts come from the data files themselves.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readKeyFile } from '../client/config.js';
import { AgencyKey } from '../shared/auth/agency-key.js';
import { computeProof } from '../shared/auth/proof.js';
import { WINNING_NUMBER, type Bet } from '../shared/domain/bet.js';
import { encodeFrame } from '../shared/protocol/codec.js';
import { deferred } from '../shared/util/async.js';
import { ErrorCode, MessageType, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { generateAgencyFile } from '../tools/gen-data/files.js';
import { genKeys } from '../tools/gen-keys.js';
import {
  ROOT,
  countStoredRows,
  failures,
  killAll,
  makeTempDir,
  readAgencyRows,
  removeDir,
  startClient,
  startServer,
  type Proc,
} from './helpers/processes.js';
import { RawPeer, kind } from './helpers/raw-peer.js';
import { batch } from './helpers/session-harness.js';

const SIZES = [3000, 2500, 1600, 900, 100];
const AUTH_FAILED = `ERROR ${ErrorCode.AUTH_FAILED}`;
let dir: string;
let files: string[];
let rows: string[][][];
const keys: AgencyKey[] = [];
const keyTexts: string[] = [];

beforeAll(async () => {
  dir = await makeTempDir('hostile');
  genKeys(5, join(dir, 'keys'));
  files = SIZES.map((_, i) => join(dir, `agency-${i + 1}.csv`));
  await Promise.all(files.map((path, i) => generateAgencyFile({ path, agency: i + 1, seed: 10 + i, rows: SIZES[i]! })));
  rows = await Promise.all(files.map(readAgencyRows));
  for (let a = 1; a <= 5; a++) {
    keys[a] = readKeyFile(keyFile(a));
    keyTexts[a] = (await readFile(keyFile(a), 'utf8')).trim();
  }
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

const keyFile = (agency: number): string => join(dir, 'keys', `agency-${agency}.key`);

async function server(name: string, env: Record<string, string> = {}): Promise<{ proc: Proc; port: number; storage: string }> {
  const storage = join(dir, `${name}-bets.csv`);
  const { proc, port } = await startServer({
    storagePath: storage,
    agencies: 5,
    env: {
      SERVER_AUTH: 'on',
      SERVER_AGENCY_KEYS: join(dir, 'keys', 'agencies.keys'),
      SERVER_AUTH_TIMEOUT: '2s',
      SERVER_WORKERS: '1',
      ...env,
    },
  });
  return { proc, port, storage };
}

function client(port: number, agency: number, env: Record<string, string> = {}): Proc {
  return startClient({ port, id: agency, dataFile: files[agency - 1]!, env: { CLI_KEY_FILE: keyFile(agency), ...env } });
}

function clients(port: number, env: Record<string, string> = {}): Proc[] {
  return files.map((_, i) => client(port, i + 1, env));
}

/** Every client exits 0 with its agency's winners; every row is stored once; no key in any log. */
async function expectFiveCorrect(server: Proc, five: Proc[], storage: string): Promise<void> {
  for (const c of five) {
    expect(await c.waitExit(120_000), `${c.name}:\n${c.lines.slice(-20).join('\n')}`).toEqual({ code: 0, signal: null });
    expect(failures(c)).toEqual([]);
  }
  rows.forEach((r, i) => {
    const winners = r.filter((f) => Number(f[4]) === WINNING_NUMBER).length;
    const line = five[i]!.log.find((l) => l.action === 'consulta_ganadores' && l.result === 'success');
    expect(Number(line?.fields.cant_ganadores), `winners of agency ${i + 1}`).toBe(winners);
  });
  server.signal('SIGTERM');
  expect(await server.waitExit()).toEqual({ code: 0, signal: null });
  expect(await countStoredRows(storage)).toBe(SIZES.reduce((a, b) => a + b, 0));
  expect(server.count('sorteo', 'success')).toBe(1);
  for (const text of keyTexts.slice(1)) for (const p of [server, ...five]) expect(p.text).not.toContain(text);
}

const bets = (agency: number, from: number, n: number): Bet[] =>
  rows[agency - 1]!.slice(from, from + n).map(([firstName, lastName, document, birthdate, number]) => ({
    agency,
    firstName: firstName!,
    lastName: lastName!,
    document: document!,
    birthdate: birthdate!,
    number: Number(number),
  }));

describe('a server with authentication on', () => {
  it('refuses a wrong key, another agency key, a replayed proof, no proof and a late proof, slowing each source down; the five clients finish', async () => {
    const { proc, port, storage } = await server('refusals');
    // Agency 3's client starts once the test's own connection for agency 3 is gone.
    const [one, two, four, five] = [1, 2, 4, 5].map((a) => client(port, a));
    const from = (n: number) => RawPeer.open(port, { localAddress: `127.0.0.${n}` });
    const outsider = AgencyKey.parse('0'.repeat(64));
    expect(kind(await (await from(2)).authenticate(3, outsider))).toBe(AUTH_FAILED);
    expect(kind(await (await from(3)).authenticate(3, keys[4]!)), "agency 4's key for agency 3").toBe(AUTH_FAILED);
    expect(kind(await (await from(3)).authenticate(3, keys[4]!, 4)), "agency 4's proof answering HELLO 3").toBe(AUTH_FAILED);

    const first = await from(4);
    const nonce = await first.hello(3);
    const mac = computeProof(keys[3]!, PROTOCOL_VERSION, 3, nonce);
    first.send({ type: MessageType.PROOF, mac });
    expect(kind(await first.nth(1))).toBe('WELCOME');
    const replay = await from(4);
    await replay.hello(3);
    replay.send({ type: MessageType.PROOF, mac });
    expect(kind(await replay.nth(1)), 'the proof of an earlier connection').toBe(AUTH_FAILED);
    first.destroy();
    const three = client(port, 3);

    const silent = await from(5);
    await silent.hello(3);
    expect((await silent.rest()).map(kind)).toEqual(['CHALLENGE', `ERROR ${ErrorCode.AUTH_TIMEOUT}`]);
    const late = await from(6);
    const lateNonce = await late.hello(3);
    expect(kind(await late.nth(1))).toBe(`ERROR ${ErrorCode.AUTH_TIMEOUT}`);
    late.send({ type: MessageType.PROOF, mac: computeProof(keys[3]!, PROTOCOL_VERSION, 3, lateNonce) });
    expect((await late.rest()).map(kind), 'a valid proof after the deadline binds nothing').toEqual([
      'CHALLENGE',
      `ERROR ${ErrorCode.AUTH_TIMEOUT}`,
    ]);

    for (let i = 0; i < 3; i++) expect(kind(await (await from(9)).authenticate(2, outsider))).toBe(AUTH_FAILED);
    const failed = proc.log.filter((l) => l.action === 'autenticacion' && l.result === 'fail');
    expect(failed.map((l) => `${l.fields.agencia}@${l.fields.origen}`)).toEqual([
      '3@127.0.0.2',
      '3@127.0.0.3',
      '3@127.0.0.3',
      '3@127.0.0.4',
      '2@127.0.0.9',
      '2@127.0.0.9',
      '2@127.0.0.9',
    ]);
    const held = failed.filter((l) => l.fields.origen === '127.0.0.9').map((l) => Number(l.fields.espera_ms));
    expect(held[1]! > held[0]! && held[2]! > held[1]!, `growing delay per source: ${held}`).toBe(true);
    await expectFiveCorrect(proc, [one!, two!, three, four!, five!], storage); // also: no key in any log
    expect(proc.text).not.toContain(mac.toString('hex'));
  });

  it('gives an unauthenticated peer nothing (no sequence poisoning, no early FINISHED, no winners); the five clients finish correctly', async () => {
    const { proc, port, storage } = await server('unbound');
    const poison = encodeFrame(MessageType.BATCH, Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0]));
    const finish = (a: number) => ({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: a }) as const;
    const attempts: Array<(p: RawPeer) => Promise<void> | void> = [
      (p) => p.write(poison),
      (p) => p.send(finish(3)),
      (p) => p.send({ type: MessageType.WINNERS_QUERY, agency: 3 }),
      async (p) => {
        await p.hello(3);
        p.write(Buffer.concat([poison, batch(0, bets(3, 0, 1))]));
      },
      async (p) => {
        await p.hello(3);
        p.send(finish(3));
      },
      (p) => p.write(Buffer.concat([encodeFrame(MessageType.HELLO, Buffer.from([0, 2, 0, 0, 0, 3])), batch(0, bets(3, 0, 1))])),
    ];
    for (const attempt of attempts) {
      const p = await RawPeer.open(port, { localAddress: '127.0.0.7' });
      await attempt(p);
      expect((await p.rest()).map(kind).at(-1)).toBe(`ERROR ${ErrorCode.NOT_BOUND}`);
    }
    const bad = await RawPeer.open(port, { localAddress: '127.0.0.8' });
    const nonce = await bad.hello(3);
    bad.write(
      Buffer.concat([
        encodeFrame(MessageType.PROOF, Buffer.alloc(32, 1)),
        poison,
        encodeFrame(MessageType.FINISHED, Buffer.from([0, 0, 0, 3])),
      ]),
    );
    expect((await bad.rest()).map(kind)).toEqual(['CHALLENGE', AUTH_FAILED]);
    expect(nonce).toHaveLength(32);
    expect(proc.log.filter((l) => l.action === 'notificacion' || l.action === 'apuesta_recibida')).toEqual([]);
    await expectFiveCorrect(proc, clients(port), storage);
  });

  it('lets the rightful agency take over while its old connection is half-open; no bet is stored twice', async () => {
    const { proc, port, storage } = await server('takeover');
    const old = await RawPeer.open(port);
    expect(kind(await old.authenticate(1, keys[1]!))).toBe('WELCOME');
    old.write(batch(0, bets(1, 0, 10)));
    await proc.waitForAction('apuesta_recibida', 'success');
    old.socket.pause(); // reads nothing more and never closes: half-open as far as the server can tell
    const five = clients(port);
    await five[0]!.waitForAction('connect', 'success');
    expect(five[0]!.log.find((l) => l.action === 'connect')?.fields.siguiente).toBe('10');
    await expectFiveCorrect(proc, five, storage);
    old.socket.resume();
    expect((await old.rest()).map(kind)).toEqual(['CHALLENGE', 'WELCOME', 'BATCH_ACK', `ERROR ${ErrorCode.REPLACED}`]);
  });

  it('500 connections that never authenticate and 500 slow ones, reconnecting, do not stop the five clients', async () => {
    const { proc, port, storage } = await server('flood', { SERVER_MAX_UNAUTHENTICATED_PER_SOURCE: '16' });
    let running = true;
    const live = new Set<RawPeer>();
    const seen = { busy: 0, timeout: 0 };
    // The clients can finish before the flood has shown both refusals: it runs until it has.
    const bothSeen = deferred();
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const attacker = async (source: string, slow: boolean): Promise<void> => {
      const hello = encodeFrame(MessageType.HELLO, Buffer.from([0, 2, 0, 0, 0, 1]));
      while (running) {
        const p = await RawPeer.open(port, { localAddress: source, timeoutMs: 3000 }).catch(() => null);
        if (p !== null) {
          live.add(p);
          if (!running) p.destroy(); // opened after the flood was called off
          for (let i = 0; slow && i < hello.length && !p.isClosed && running; i++) {
            p.write(hello.subarray(i, i + 1));
            await pause(300);
          }
          const last = (await p.rest()).at(-1);
          live.delete(p);
          if (last?.type === MessageType.ERROR && last.code === ErrorCode.BUSY) seen.busy++;
          if (last?.type === MessageType.ERROR && last.code === ErrorCode.AUTH_TIMEOUT) seen.timeout++;
          if (seen.busy > 0 && seen.timeout > 0) bothSeen.resolve();
        }
        await pause(1000);
      }
    };
    const flood = [
      ...Array.from({ length: 500 }, () => attacker('127.0.0.2', false)),
      ...Array.from({ length: 500 }, () => attacker('127.0.0.3', true)),
    ];
    await proc.waitFor((l) => l.action === 'conexion' && l.result === 'fail' && l.fields.codigo === String(ErrorCode.BUSY));
    const five = clients(port);
    await Promise.all(five.map((c) => c.waitExit(120_000)));
    await bothSeen.promise;
    running = false;
    for (const p of live) p.destroy();
    await Promise.all(flood);
    expect(seen.busy).toBeGreaterThan(0);
    expect(seen.timeout).toBeGreaterThan(0);
    // The flood comes from other sources: capped per source, it never fills the budget the agencies' connections start in.
    for (const c of five) expect(c.log.filter((l) => l.action === 'connect' && /server busy/.test(l.fields.error ?? ''))).toEqual([]);
    await expectFiveCorrect(proc, five, storage);
  });

  it('keeps its memory bounded under a PING flood that never reads, and frees those connections; the five clients finish', async () => {
    const { proc, port, storage } = await server('pings', { SERVER_IDLE_TIMEOUT: '3s' });
    const rss = async (): Promise<number> => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${proc.pid}/status`, 'utf8'))![1]) / 1024;
    const before = await rss();
    const unbound = await RawPeer.open(port, { localAddress: '127.0.0.4' });
    const bound = await RawPeer.open(port, { localAddress: '127.0.0.5' });
    expect(kind(await bound.authenticate(2, keys[2]!))).toBe('WELCOME');
    // The other agencies run during the flood; agency 2's client once the flooder holding it is gone.
    const [one, three, four, five] = [1, 3, 4, 5].map((a) => client(port, a));
    const pings = Buffer.concat(Array.from({ length: 13_107 }, () => encodeFrame(MessageType.PING)));
    const flood = async (p: RawPeer): Promise<void> => {
      p.socket.pause();
      while (!p.isClosed) if (!p.socket.write(pings)) await Promise.race([new Promise((r) => p.socket.once('drain', r)), p.closed]);
    };
    let peak = before;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rss());
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await Promise.all([flood(unbound), flood(bound)]);
    sampling = false;
    await sampler;
    expect(peak - before, `RSS ${before.toFixed(1)} MB before, peak ${peak.toFixed(1)} MB`).toBeLessThan(48);
    // The flooders' ends (a real client slowed past SERVER_AUTH_TIMEOUT by the load, from 127.0.0.1, connects again).
    const flooders = proc.log.filter((l) => l.action === 'protocolo' && l.fields.origen !== '127.0.0.1');
    expect(flooders.map((l) => `${l.fields.codigo}@${l.fields.origen}`).sort()).toEqual(
      [`${ErrorCode.AUTH_TIMEOUT}@127.0.0.4`, `${ErrorCode.BUSY}@127.0.0.5`].sort(),
    );
    await expectFiveCorrect(proc, [one!, client(port, 2), three!, four!, five!], storage);
  });

  it("makes a client with the wrong key or none say the server's reason and exit 1 without retrying", async () => {
    const { proc, port } = await server('reasons');
    const wrong = startClient({ port, id: 1, dataFile: files[0]!, env: { CLI_KEY: keyTexts[2]! } });
    const none = startClient({ port, id: 1, dataFile: files[0]!, env: {} });
    for (const [c, why] of [
      [wrong, /server error 13 - the PROOF does not match agency 1's key/],
      [none, /does not match agency 1's key;.*this client has no key/],
    ] as const) {
      expect(await c.waitExit()).toEqual({ code: 1, signal: null });
      expect(c.log.find((l) => l.action === 'exit')?.fields.error).toMatch(why);
      expect(c.count('connect', 'in_progress')).toBe(0);
    }
    proc.signal('SIGTERM');
    await proc.waitExit();
  });

  it('speaks TLS: clients trusting its CA finish; one trusting another CA fails at once, saying why', async () => {
    const run = promisify(execFile);
    const [good, other] = [join(dir, 'certs'), join(dir, 'other-certs')];
    for (const d of [good, other]) await run('bash', [join(ROOT, 'tools/make-certs.sh'), d]);
    const { proc, port, storage } = await server('tls', {
      SERVER_TLS_CERT: join(good, 'server.crt'),
      SERVER_TLS_KEY: join(good, 'server.key'),
    });
    const stranger = startClient({
      port,
      id: 1,
      dataFile: files[0]!,
      env: { CLI_KEY_FILE: keyFile(1), CLI_TLS_CA: join(other, 'ca.crt') },
    });
    expect(await stranger.waitExit()).toEqual({ code: 1, signal: null });
    expect(stranger.log.find((l) => l.action === 'exit')?.fields.error).toMatch(
      /TLS handshake with 127\.0\.0\.1\/\d+ failed \(unable to verify the first certificate\).*CLI_TLS_CA/,
    );
    expect(stranger.count('connect', 'in_progress')).toBe(0);
    const plain = await RawPeer.open(port);
    plain.send({ type: MessageType.PING });
    expect(await plain.rest(), 'plain TCP to a TLS server gets no protocol answer').toEqual([]);
    const peer = await RawPeer.open(port, { ca: await readFile(join(good, 'ca.crt')) });
    peer.send({ type: MessageType.PING });
    expect(kind(await peer.nth(0))).toBe('PONG');
    peer.destroy();
    await expectFiveCorrect(proc, clients(port, { CLI_TLS_CA: join(good, 'ca.crt') }), storage);
  });
});
