/**
 * Logs a person can read: the server's `desconexion` line (one per connection, with its
 * cause) and the winners' DNIs at DEBUG only, in-process on Sessions over duplexPair; the
 * client's `exit` line with its totals however the run ends (done, SIGTERM, a lost server,
 * no server at all) and its hint when it gives up connecting, on real processes. Expected
 * figures come from the input file and the client's own lines.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectTimeoutError, ServerGoneError, ServerRefusedError } from '../client/errors.js';
import { giveUpHint } from '../client/report.js';
import { WINNING_NUMBER } from '../shared/domain/bet.js';
import { MessageType } from '../shared/protocol/messages.js';
import { freePort } from '../shared/util/net.js';
import { killAll, makeTempDir, removeDir, startClient, startServer, type Proc } from './helpers/processes.js';
import { SessionHarness, bet, finished, ping, winnersQuery, type Peer } from './helpers/session-harness.js';

let dir: string;
const harnesses: SessionHarness[] = [];
beforeAll(async () => {
  dir = await makeTempDir('readable-logs');
});
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
  await killAll();
});
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

async function harness(opts: { agencies: number; logLevel?: string }): Promise<SessionHarness> {
  const h = await SessionHarness.open(opts);
  harnesses.push(h);
  return h;
}

const PINO_LEVEL = { debug: 20, info: 30, warn: 40 } as const;
const disconnects = (h: SessionHarness): Array<Record<string, unknown>> => h.logged().filter((l) => l.action === 'desconexion');

describe('the server says when a connection ends, and why', () => {
  it('a client that hangs up after its work: success, its session and agency, at INFO', async () => {
    const h = await harness({ agencies: 1 });
    const p = await h.bound(1);
    p.hangUp();
    await p.ended; // the session saw our end and closed its side
    await p.session.close();
    expect(disconnects(h)).toEqual([
      expect.objectContaining({ level: PINO_LEVEL.info, result: 'success', sesion: p.session.id, agencia: 1, motivo: 'peer closed' }),
    ]);
  });

  it('a health probe (PING, PONG, gone): success at DEBUG, so the probes every 2 s stay out of an INFO log', async () => {
    const h = await harness({ agencies: 1 });
    const p = h.connect();
    p.stream.write(ping());
    expect(await p.next()).toMatchObject({ type: MessageType.PONG });
    p.hangUp();
    await p.ended; // the session saw our end and closed its side
    await p.session.close();
    expect(disconnects(h)).toEqual([
      expect.objectContaining({ level: PINO_LEVEL.debug, result: 'success', agencia: 0, motivo: 'peer closed' }),
    ]);
  });

  it('a protocol error: fail at WARN, with the code and the message the peer was sent', async () => {
    const h = await harness({ agencies: 1 });
    const p = h.connect();
    p.stream.write(finished(1)); // before HELLO
    const error = await p.next();
    expect(error).toMatchObject({ type: MessageType.ERROR });
    await p.ended;
    await p.session.close();
    const [line] = disconnects(h);
    expect(line).toMatchObject({ level: PINO_LEVEL.warn, result: 'fail', agencia: 0 });
    if (error.type !== MessageType.ERROR) throw new Error('unreachable');
    expect(line!.motivo).toBe(`protocol error ${error.code}: ${error.message}`);
  });

  it('a connection that fails (a reset): fail, naming the error', async () => {
    const h = await harness({ agencies: 1 });
    const p = await h.bound(1);
    p.server.destroy(new Error('read ECONNRESET'));
    await new Promise((resolve) => p.server.once('close', resolve));
    await p.session.close();
    expect(disconnects(h)).toEqual([
      expect.objectContaining({ level: PINO_LEVEL.warn, result: 'fail', agencia: 1, motivo: 'connection error: read ECONNRESET' }),
    ]);
  });

  it('the server shutting down: success, saying so; a session closing twice logs once', async () => {
    const h = await harness({ agencies: 2 });
    const [a, b] = [await h.bound(1), await h.bound(2)];
    await Promise.all([a.session.close(true), b.session.close(true), a.session.close()]);
    const lines = disconnects(h).sort((x, y) => Number(x.agencia) - Number(y.agencia));
    expect(lines).toEqual([
      expect.objectContaining({ result: 'success', agencia: 1, motivo: 'server shutting down' }),
      expect.objectContaining({ result: 'success', agencia: 2, motivo: 'server shutting down' }),
    ]);
  });
});

describe("the winners' DNIs", () => {
  /** Agency 1 has winners 101 and 103, agency 2 has 201; both finish and ask. */
  async function drawAndAsk(h: SessionHarness): Promise<Array<Record<string, unknown>>> {
    const peers: Peer[] = [await h.bound(1), await h.bound(2)];
    await h.store(peers[0]!, [[bet(1, '101', WINNING_NUMBER), bet(1, '102', 1), bet(1, '103', WINNING_NUMBER)]]);
    await h.store(peers[1]!, [[bet(2, '201', WINNING_NUMBER), bet(2, '202', 7575)]]);
    // Agency 1's query is held until agency 2 finishes too and the draw ends.
    for (const [i, p] of peers.entries()) p.stream.write(Buffer.concat([finished(i + 1), winnersQuery(i + 1)]));
    for (const p of peers) {
      expect(await p.next()).toMatchObject({ type: MessageType.FINISHED_ACK });
      expect(await p.next()).toMatchObject({ type: MessageType.WINNERS, last: true });
    }
    return h.logged().filter((l) => l.action === 'consulta_ganadores');
  }

  it('at DEBUG, each agency its own, on its consulta_ganadores line', async () => {
    const lines = await drawAndAsk(await harness({ agencies: 2 }));
    expect(lines).toEqual([
      expect.objectContaining({ agencia: 1, cant_ganadores: 2, documentos: '101,103' }),
      expect.objectContaining({ agencia: 2, cant_ganadores: 1, documentos: '201' }),
    ]);
  });

  it('at INFO, only counted', async () => {
    const lines = await drawAndAsk(await harness({ agencies: 2, logLevel: 'info' }));
    expect(lines.map((l) => [l.agencia, l.cant_ganadores])).toEqual([
      [1, 2],
      [2, 1],
    ]);
    for (const l of lines) expect(l).not.toHaveProperty('documentos');
  });
});

/** The client's last line, which must be its exit line. */
function exitLine(c: Proc): Record<string, string> {
  const last = c.log.at(-1);
  expect(last?.action, c.text).toBe('exit');
  return { result: last!.result, ...last!.fields };
}

/** Bets in the client's own `apuesta_enviada | result: success` lines. */
const ackedBets = (c: Proc): number =>
  c.log.filter((l) => l.action === 'apuesta_enviada' && l.result === 'success').reduce((n, l) => n + Number(l.fields.cantidad), 0);

describe("the client's exit line carries its totals", () => {
  /** `rows` valid bets (every 100th a winner) with one bad row in the middle. */
  async function dataFile(name: string, rows: number): Promise<{ path: string; winners: number }> {
    const lines = Array.from({ length: rows }, (_, i) => `Ana,Paz,${40_000_000 + i},1990-01-02,${i % 100 === 0 ? WINNING_NUMBER : i}`);
    lines.splice(rows / 2, 0, 'Ana,Paz,notadni,1990-01-02,5');
    const path = join(dir, name);
    await writeFile(path, `${lines.join('\r\n')}\r\n`);
    return { path, winners: Math.ceil(rows / 100) };
  }

  it('a whole run: every bet sent and stored, its winners, the bad row', async () => {
    const data = await dataFile('whole.csv', 600);
    const { proc: server, port } = await startServer({ storagePath: join(dir, 'whole-bets.csv'), agencies: 1 });
    const client = startClient({ port, id: 1, dataFile: data.path });
    expect((await client.waitExit()).code, client.text).toBe(0);
    expect(exitLine(client)).toMatchObject({
      result: 'success',
      enviadas: '600',
      almacenadas: '600',
      duplicadas: '0',
      rechazadas: '0',
      ganadores: String(data.winners),
      filas_invalidas: '1',
    });
    expect(ackedBets(client)).toBe(600);
    const gone = await server.waitFor((l) => l.action === 'desconexion');
    expect(gone).toMatchObject({ result: 'success', fields: { agencia: '1', motivo: 'peer closed' } });
  });

  it('after SIGTERM while it waits for a draw that cannot happen: what was stored, no winners yet', async () => {
    const data = await dataFile('sigterm.csv', 400);
    const { proc: server, port } = await startServer({ storagePath: join(dir, 'sigterm-bets.csv'), agencies: 2 });
    const client = startClient({ port, id: 1, dataFile: data.path });
    await client.waitForAction('notificacion_enviada', 'success');
    client.signal('SIGTERM');
    expect((await client.waitExit()).code, client.text).toBe(0);
    expect(exitLine(client)).toMatchObject({
      result: 'success',
      signal: 'SIGTERM',
      enviadas: '400',
      almacenadas: String(ackedBets(client)),
      rechazadas: '0',
      ganadores: '-',
      filas_invalidas: '1',
    });
    expect(ackedBets(client)).toBe(400);
    expect(await server.waitFor((l) => l.action === 'desconexion')).toMatchObject({ result: 'success', fields: { agencia: '1' } });
  });

  it('after losing its server: exit fail, with what was stored before and the reason', async () => {
    const data = await dataFile('lost.csv', 400);
    const { proc: server, port } = await startServer({ storagePath: join(dir, 'lost-bets.csv'), agencies: 2 });
    // A client that reconnects after a lost server gives up quickly here.
    const client = startClient({ port, id: 1, dataFile: data.path, env: { CLI_SERVER_RECONNECTTIMEOUT: '300ms' } });
    await client.waitForAction('notificacion_enviada', 'success');
    server.signal('SIGTERM');
    expect((await server.waitExit()).code, server.text).toBe(0);
    expect((await client.waitExit()).code, client.text).toBe(1);
    const exit = exitLine(client);
    expect(exit).toMatchObject({ result: 'fail', enviadas: '400', almacenadas: '400', ganadores: '-', filas_invalidas: '1' });
    // The raw line: a host:port inside the error hides the field from a last-':' reader.
    expect(client.lines.filter((l) => l.includes('action: exit')).at(-1)).toMatch(/\| error: .*(shutting down|did not come back)/);
    expect(server.log.find((l) => l.action === 'desconexion')).toMatchObject({
      result: 'success',
      fields: { agencia: '1', motivo: 'server shutting down' },
    });
    // It gave up reconnecting: the same hint as a client that never connected.
    expect(client.log.find((l) => l.action === 'connect' && l.result === 'fail')?.fields.servidor).toBe(`127.0.0.1/${port}`);
  });
});

describe('a client that gives up connecting', () => {
  it('names the address it tried and says to read that server’s log, then exits 1 with its (empty) totals', async () => {
    const port = await freePort(); // nothing listens there
    const data = join(dir, 'nobody.csv');
    await writeFile(data, 'Ana,Paz,1,1990-01-02,1\r\n');
    const client = startClient({ port, id: 1, dataFile: data, env: { CLI_SERVER_CONNECTTIMEOUT: '300ms' } });
    expect((await client.waitExit()).code, client.text).toBe(1);
    const hint = client.log.find((l) => l.action === 'connect' && l.result === 'fail');
    expect(hint, client.text).toBeDefined();
    expect(hint!.fields.servidor).toBe(`127.0.0.1/${port}`);
    expect(hint!.fields.sugerencia).toContain(`no server answered at 127.0.0.1/${port}; its own log says why`);
    expect(hint!.fields.sugerencia).toContain('docker logs <its container>');
    expect(exitLine(client)).toMatchObject({ result: 'fail', enviadas: '0', almacenadas: '0', ganadores: '-' });
  });

  it('under Compose the host is the server container: the hint names it; other failures give no hint', () => {
    const hint = giveUpHint(new ConnectTimeoutError('server:12345', 30_000, 'getaddrinfo ENOTFOUND server'));
    expect(hint).toEqual({
      servidor: 'server/12345',
      sugerencia: expect.stringMatching(
        /docker logs server, and its health with docker inspect --format \{\{\.State\.Health\.Status\}\} server$/,
      ),
    });
    expect(giveUpHint(new ServerGoneError('server:12345', 30_000, 10, 'ECONNREFUSED'))?.sugerencia).toContain('docker logs server,');
    expect(giveUpHint(new ServerRefusedError(7, 'busy'))).toBeNull();
    expect(giveUpHint(new Error('connection to the server closed'))).toBeNull();
  });
});
