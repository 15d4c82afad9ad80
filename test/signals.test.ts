/**
 * SIGTERM mid-ingestion, to the server and to a client: orderly release of every resource,
 * exit code 0, and for the server "acknowledged implies stored" with no torn last row.
 */
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage } from '../shared/protocol/codec.js';
import { MAC_BYTES, MessageType, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { loadBets } from '../server/storage/bets-file.js';
import { freePort } from '../shared/util/net.js';
import { generateAgencyFile } from '../tools/gen-data/files.js';
import {
  countStoredRows,
  failures,
  killAll,
  makeTempDir,
  removeDir,
  spawnServer,
  startClient,
  startServer,
  type Proc,
} from './helpers/processes.js';

const BIG = 1_000_000;
const NO_KEY_PROOF = encodeMessage({ type: MessageType.PROOF, mac: Buffer.alloc(MAC_BYTES) });
let dir: string;
let bigFile: string;
const sockets: Socket[] = [];

beforeAll(async () => {
  dir = await makeTempDir('signals');
  bigFile = join(dir, 'agency-1.csv');
  await generateAgencyFile({ path: bigFile, agency: 1, seed: 99, rows: BIG });
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await killAll();
});
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

function sumCantidad(p: Proc, action: string): number {
  return p.log.filter((l) => l.action === action && l.result === 'success').reduce((n, l) => n + Number(l.fields.cantidad), 0);
}

/** The lotes (first bet indexes) of the batches that `action` lines report as success, for `agency` when given. */
function lotes(p: Proc, action: string, agency?: number): number[] {
  return p.log
    .filter((l) => l.action === action && l.result === 'success' && (agency === undefined || l.fields.agencia === String(agency)))
    .map((l) => Number(l.fields.lote))
    .sort((a, b) => a - b);
}

/** Each of these actions is logged, and first in this order. */
function expectIncreasing(p: Proc, actions: string[]): void {
  const at = actions.map((a) => p.indexOf(a));
  const inOrder = at.every((v, i) => v >= 0 && (i === 0 || v > at[i - 1]!));
  expect(inOrder, `${actions.join(', ')} at lines ${at.join(', ')} of:\n${p.text}`).toBe(true);
}

/** A raw connection that has said HELLO for `agency` and been bound by the server (its `conexion` line). */
async function boundPeer(server: Proc, port: number, agency: number, allowHalfOpen = false): Promise<Socket> {
  const peer = connect({ host: '127.0.0.1', port, allowHalfOpen });
  sockets.push(peer);
  peer.on('error', () => {});
  await new Promise<void>((resolve) => peer.once('connect', () => resolve()));
  // HELLO and the PROOF of a client with no key, back to back (the server takes any mac while auth is off).
  peer.write(Buffer.concat([encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency }), NO_KEY_PROOF]));
  await server.waitFor((l) => l.action === 'conexion' && l.result === 'success' && l.fields.agencia === String(agency));
  return peer;
}

describe('SIGTERM to the server while agencies are sending', () => {
  let storage: string;
  let server: Proc;
  let port: number;
  /** Reconnects for the default 60 s: SIGTERMed while it does. */
  let client: Proc;
  /** Reconnects for 1 s only: gives up. */
  let impatient: Proc;

  beforeAll(async () => {
    storage = join(dir, 'server-term.csv');
    ({ proc: server, port } = await startServer({ storagePath: storage, agencies: 2 }));
    client = startClient({ port, id: 1, dataFile: bigFile });
    impatient = startClient({ port, id: 2, dataFile: bigFile, env: { CLI_SERVER_RECONNECTTIMEOUT: '1s' } });
    // Both agencies sending: on a loaded machine one client may start well after the other.
    await Promise.all(['1', '2'].map((a) => server.waitFor((l) => l.action === 'apuesta_recibida' && l.fields.agencia === a)));
    server.signal('SIGTERM');
    await server.waitExit();
    await client.waitFor((l) => l.action === 'reconexion' && Number(l.fields.intento) >= 2);
    client.signal('SIGTERM');
    await Promise.all([client.waitExit(), impatient.waitExit()]);
  });

  it('exits 0 after closing acceptor, pool, storage and journal in that order, with no failure before the signal', () => {
    expect(server.exit).toEqual({ code: 0, signal: null });
    const shutdown = server.indexOf('shutdown');
    expect(shutdown).toBeGreaterThan(0);
    expect(server.log[shutdown]?.fields.signal).toBe('SIGTERM');
    expect(failures(server, shutdown)).toEqual([]);
    expectIncreasing(server, ['shutdown', 'close_acceptor', 'close_pool', 'close_storage', 'close_journal', 'exit']);
    expect(server.log.at(-1)).toMatchObject({ action: 'exit', result: 'success' });
  });

  it('stored every batch it acknowledged, and only those, with no torn last row', async () => {
    const acknowledged = sumCantidad(server, 'apuesta_recibida');
    expect(acknowledged).toBeGreaterThan(0);
    expect(acknowledged).toBeLessThan(BIG); // the signal really came mid-ingestion
    expect(await countStoredRows(storage)).toBe(acknowledged);
    let loaded = 0;
    for await (const bet of loadBets(storage)) {
      expect([1, 2]).toContain(bet.agency);
      loaded++;
    }
    expect(loaded).toBe(acknowledged);
  });

  it('every batch the server acknowledged, its client logged as acknowledged (the ERROR cut a send short), and all are stored', async () => {
    // The server answers the batches it has before its ERROR SHUTTING_DOWN, which usually finds
    // the client waiting for 'drain' (the closing server reads no more): no ack may be lost then.
    expect(lotes(client, 'apuesta_enviada')).toEqual(lotes(server, 'apuesta_recibida', 1));
    expect(lotes(impatient, 'apuesta_enviada')).toEqual(lotes(server, 'apuesta_recibida', 2));
    expect(sumCantidad(client, 'apuesta_enviada') + sumCantidad(impatient, 'apuesta_enviada')).toBe(await countStoredRows(storage));
  });

  it('a client keeps reconnecting, and SIGTERM then ends it cleanly: exit 0, file and socket closed', () => {
    expect(client.exit).toEqual({ code: 0, signal: null });
    expectIncreasing(client, ['conexion', 'reconexion', 'shutdown', 'exit']);
    expect(client.log.find((l) => l.action === 'conexion' && l.result === 'fail')?.fields.error).toMatch(/shutting down|closed/);
    expect(client.indexOf('close_file')).toBeGreaterThanOrEqual(0);
    expect(client.log.at(-1)).toMatchObject({ action: 'exit', result: 'success', fields: { signal: 'SIGTERM' } });
  });

  it('a client whose server does not come back within server.reconnectTimeout exits 1 saying how many bets are stored', async () => {
    expect(impatient.exit).toEqual({ code: 1, signal: null });
    const exit = impatient.lines.filter((l) => l.includes('action: exit'));
    expect(exit).toHaveLength(1);
    // The exit line's totals come between result and error.
    const known =
      /result: fail \| .*\| error: .*did not come back within 1000 ms .*; (\d+) bets of this agency are known to be stored/.exec(exit[0]!);
    expect(known, impatient.text.slice(-500)).not.toBeNull();
    // Known stored: every bet it saw acknowledged (at least), and never more than the file holds for it.
    const acked = sumCantidad(impatient, 'apuesta_enviada');
    let inFile = 0;
    for await (const bet of loadBets(storage)) if (bet.agency === 2) inFile++;
    expect(Number(known![1])).toBeGreaterThanOrEqual(acked);
    expect(Number(known![1])).toBeLessThanOrEqual(inFile);
  });

  it('a new server listens on the same port at once (no "address in use")', async () => {
    const again = spawnServer(
      { SERVER_PORT: String(port), SERVER_AGENCIES: '2', SERVER_STORAGE_PATH: join(dir, 'restart.csv') },
      'server-restart',
    );
    const listen = await again.waitForAction('listen');
    expect(listen.result, again.text).toBe('success');
    expect(Number(listen.fields.puerto)).toBe(port);
    again.signal('SIGTERM');
    expect(await again.waitExit(), again.text).toEqual({ code: 0, signal: null });
  });
});

describe('SIGTERM to a client while it is sending', () => {
  it('closes its file and socket, exits 0, and the server keeps exactly what it acknowledged', async () => {
    const storage = join(dir, 'client-term.csv');
    const { proc: server, port } = await startServer({ storagePath: storage, agencies: 1 });
    const client = startClient({ port, id: 1, dataFile: bigFile });
    await client.waitForAction('apuesta_enviada', 'success');
    client.signal('SIGTERM');
    expect(await client.waitExit()).toEqual({ code: 0, signal: null });
    const shutdown = client.indexOf('shutdown');
    expect(shutdown).toBeGreaterThan(0);
    expect(failures(client, shutdown)).toEqual([]);
    // The file closes before the socket: once stopped, nothing more is read.
    expectIncreasing(client, ['close_file', 'close_socket']);
    expectIncreasing(client, ['shutdown', 'close_socket', 'exit']);
    expect(client.log.at(-1)).toMatchObject({ action: 'exit', result: 'success' });
    expect(sumCantidad(client, 'apuesta_enviada')).toBeLessThan(BIG);
    // The server saw the agency leave; it stays up, then shuts down cleanly.
    server.signal('SIGTERM');
    expect(await server.waitExit()).toEqual({ code: 0, signal: null });
    expect(failures(server), `${server.text}\n${client.text}`).toEqual([]);
    expect(server.count('sorteo')).toBe(0);
    expect(await countStoredRows(storage)).toBe(sumCantidad(server, 'apuesta_recibida'));
  });
});

describe('SIGTERM with a peer that never reads its replies', () => {
  it('destroys the stuck connection at the drain deadline and still closes everything, exit 0', async () => {
    // The drain deadline is shorter than the close's grace period (CLOSE_GRACE_MS): a session
    // whose peer neither reads nor ends cannot close in time, whether or not its write is blocked yet.
    const { proc: server, port } = await startServer({
      storagePath: join(dir, 'stuck.csv'),
      agencies: 1,
      env: { SERVER_DRAIN_TIMEOUT: '500ms' },
    });
    const peer = await boundPeer(server, port, 1);
    peer.pause(); // never reads: the server's PONGs fill the socket buffers and its write waits
    const ping = encodeMessage({ type: MessageType.PING });
    peer.write(Buffer.concat(Array.from({ length: 400_000 }, () => ping)));
    server.signal('SIGTERM');
    expect(await server.waitExit(8_000)).toEqual({ code: 0, signal: null });
    expect(server.log.find((l) => l.action === 'close_sessions')?.result).toBe('fail');
    expectIncreasing(server, ['shutdown', 'close_sessions', 'close_acceptor', 'close_pool', 'close_storage', 'exit']);
  });
});

describe('a signal to a client whose socket close is held up (the server stopped with SIGSTOP)', () => {
  /** A server of two agencies and agency 1's client, done sending and waiting for a draw that agency 2 holds back. */
  async function waitingClient(name: string, env: Record<string, string> = {}): Promise<{ server: Proc; client: Proc }> {
    const file = join(dir, `${name}.csv`);
    await generateAgencyFile({ path: file, agency: 1, seed: 7, rows: 50 });
    const { proc: server, port } = await startServer({ storagePath: join(dir, `${name}-bets.csv`), agencies: 2 });
    const client = startClient({ port, id: 1, dataFile: file, env });
    await client.waitForAction('notificacion_enviada');
    // Stopped, the server takes no FIN: the client's close waits out its grace (CLOSE_GRACE_MS, 1 s).
    server.signal('SIGSTOP');
    return { server, client };
  }

  async function resume(server: Proc): Promise<void> {
    server.signal('SIGCONT');
    server.signal('SIGTERM');
    expect(await server.waitExit()).toEqual({ code: 0, signal: null });
  }

  it('a second signal during the graceful stop exits 1 with an exit line that says so', async () => {
    const { server, client } = await waitingClient('second-signal');
    client.signal('SIGTERM');
    await client.waitForAction('shutdown');
    client.signal('SIGINT');
    expect(await client.waitExit(5_000)).toEqual({ code: 1, signal: null });
    expect(client.log.at(-1), client.text).toMatchObject({ action: 'exit', result: 'fail', fields: { signal: 'SIGINT' } });
    expect(client.lines.at(-1)).toMatch(/second signal - exiting at once/);
    await resume(server);
  });

  it('a signal while a failed run closes changes nothing: no shutdown, exit 1 with the failure', async () => {
    const { server, client } = await waitingClient('failing', { CLI_WINNERS_TIMEOUT: '300ms' });
    // The winners timeout (300 ms) has failed the run, whose close then waits up to 1 s.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(client.exit, client.text).toBeNull();
    client.signal('SIGTERM');
    expect(await client.waitExit(5_000)).toEqual({ code: 1, signal: null });
    expect(client.indexOf('shutdown'), client.text).toBe(-1);
    expect(client.log.at(-1)).toMatchObject({ action: 'exit', result: 'fail' });
    expect(client.lines.at(-1)).toMatch(/no draw after 300 ms/);
    await resume(server);
  });
});

describe('a signal before the server listens', () => {
  it('SIGTERM while it waits for an unreachable database: stops waiting at once and exits 0 without listening', async () => {
    const closed = await freePort();
    const server = spawnServer({
      SERVER_PORT: '0',
      SERVER_AGENCIES: '1',
      SERVER_STORAGE: 'postgres',
      SERVER_DATABASE_URL: `postgres://loteria@127.0.0.1:${closed}/loteria`,
    });
    // Logged as open() starts waiting; it retries for 30 s, and the signal must end that wait.
    await server.waitForAction('config');
    const signalled = Date.now();
    server.signal('SIGTERM');
    expect(await server.waitExit(5_000), server.text).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(3_000);
    expectIncreasing(server, ['config', 'shutdown', 'close_storage', 'exit']);
    expect(server.log.at(-1)).toMatchObject({ action: 'exit', result: 'success' });
    expect(server.lines.at(-1)).toMatch(/motivo: stopped while waiting for the database/);
    expect(server.indexOf('listen')).toBe(-1);
    expect(failures(server), server.text).toEqual([]);
  });
});

describe('a second SIGTERM while the server drains', () => {
  it('exits at once without waiting for the drain', async () => {
    const { proc: server, port } = await startServer({ storagePath: join(dir, 'twice.csv'), agencies: 1 });
    // A bound peer that never ends its side keeps the session's close waiting for its grace period.
    await boundPeer(server, port, 1, true);
    server.signal('SIGTERM');
    await server.waitForAction('shutdown');
    server.signal('SIGTERM');
    const exit = await server.waitExit(5_000);
    expect(exit).toEqual({ code: 1, signal: null });
    const second = server.log.find((l) => l.action === 'exit');
    expect(second?.result).toBe('fail');
    expect(server.lines.find((l) => l.includes('action: exit'))).toMatch(/second signal/);
    expect(server.indexOf('close_storage')).toBe(-1); // it did not wait for the drain
  });
});
