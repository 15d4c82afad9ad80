/**
 * Several servers on one PostgreSQL database (SERVER_STORAGE=postgres), as processes: built
 * servers and clients from dist/, a throwaway cluster (test/helpers/postgres.ts). The runs
 * are checked against the input files (test/helpers/pg-servers.ts): every bet once, winners
 * right, one draw. The backend's own races (the last two FINISHED at once, 50 times; retries
 * of one batch on two backends; a restart under two backends) are in postgres-backend.test.ts
 * and postgres-restart.test.ts; here the same properties are shown end to end, through the
 * sessions, the takeover and the clients' list of servers.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SEED, generateData } from '../tools/gen-data/files.js';
import { AckStatus, ErrorCode, MAC_BYTES, MessageType, PROTOCOL_VERSION, type Message } from '../shared/protocol/messages.js';
import { POSTGRES, useCluster } from './helpers/postgres.js';
import { adminClient, betAt, scalar } from './helpers/pg-backends.js';
import { expectCompletePgRun, startClients, startPgServer, stopServer } from './helpers/pg-servers.js';
import { killAll, makeTempDir, removeDir, spawnServer, type StartedServer } from './helpers/processes.js';
import { RawPeer, kind } from './helpers/raw-peer.js';
import { encodeMessage } from '../shared/protocol/codec.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';

const SIZES = [3000, 2500, 1600, 900, 100];
const RUN_MS = 180_000;
let dir: string;
let files: string[];

beforeAll(async () => {
  dir = await makeTempDir('pg-servers');
  const results = await generateData({ outDir: join(dir, 'data'), agencies: 5, seed: DEFAULT_SEED, sizes: SIZES });
  files = results.map((r) => r.path);
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

/** A bound raw connection for `agency` (the servers run with SERVER_AUTH=off: any MAC passes). */
async function bound(port: number, agency: number): Promise<RawPeer> {
  const peer = await RawPeer.open(port);
  await peer.hello(agency);
  const at = peer.received.length;
  peer.send({ type: MessageType.PROOF, mac: Buffer.alloc(MAC_BYTES) });
  const welcome = await peer.nth(at);
  if (welcome?.type !== MessageType.WELCOME) throw new Error(`PROOF answered with ${kind(welcome)}`);
  return peer;
}

/** One BATCH frame of bets first..first+count-1 of the agency (test/helpers/pg-backends.ts's stream). */
function batchFrame(agency: number, first: number, count: number): Buffer {
  const builder = new BatchBuilder(count);
  for (let i = first; i < first + count; i++) if (!builder.add(betAt(agency, i))) throw new Error('too many bets for one frame');
  return builder.take(first);
}

describe.skipIf(!POSTGRES.available)('several servers on one PostgreSQL database', () => {
  const db = useCluster();

  it(
    'two servers, five agencies split between them: every bet stored once, winners right, one draw',
    async () => {
      const url = await db.database();
      // A password in the URL (trust authentication ignores it) must never reach a log line.
      const withPassword = url.replace('postgresql://postgres@', 'postgresql://postgres:hunter2@');
      expect(withPassword).not.toBe(url);
      const servers = await Promise.all([startPgServer(withPassword, 'A', 5), startPgServer(url, 'B', 5)]);
      for (const s of servers) expect(s.proc.log.find((l) => l.action === 'config')?.fields.storage).toBe('postgres');
      const clients = startClients(servers, files);
      await Promise.all(clients.map((c) => c.waitExit(RUN_MS)));
      // Each server served its share: agencies 1, 3, 5 connected to A first, 2 and 4 to B.
      const served = servers.map(
        (s) => new Set(s.proc.log.filter((l) => l.action === 'conexion' && l.result === 'success').map((l) => l.fields.agencia)),
      );
      expect(served.map((s) => [...s].sort())).toEqual([
        ['1', '3', '5'],
        ['2', '4'],
      ]);
      await expectCompletePgRun({ url, dir, files, clients, servers: servers.map((s) => s.proc) });
      await Promise.all(servers.map((s) => stopServer(s.proc)));
      expect(servers[0]!.proc.text).not.toMatch(/hunter2/);
      expect(servers[0]!.proc.text).toMatch(/database: postgres@127\.0\.0\.1\/\d+\/loteria_\d+/);
    },
    RUN_MS,
  );

  it(
    'the last two agencies finish on different servers at the same instant (5 rounds): one draw, both held queries answered',
    async () => {
      for (let round = 0; round < 5; round++) {
        const url = await db.database();
        const [a, b] = await Promise.all([startPgServer(url, `A${round}`, 2), startPgServer(url, `B${round}`, 2)]);
        const [one, two] = await Promise.all([bound(a.port, 1), bound(b.port, 2)]);
        one.write(batchFrame(1, 0, 20));
        two.write(batchFrame(2, 0, 10));
        expect([outcome(await one.nth(2)), outcome(await two.nth(2))]).toEqual(['stored', 'stored']);
        const last = (agency: number): Buffer =>
          Buffer.concat([
            encodeMessage({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency }),
            encodeMessage({ type: MessageType.WINNERS_QUERY, agency }),
          ]);
        one.write(last(1));
        two.write(last(2));
        const acks = [await one.nth(3), await two.nth(3)].map((m) => (m?.type === MessageType.FINISHED_ACK ? m.finished : kind(m)));
        expect(acks.sort()).toEqual([1, 2]);
        // Bets i with i % 9 == 0 carry the winning number (test/helpers/pg-backends.ts).
        expect(await one.nth(4)).toEqual({ type: MessageType.WINNERS, last: true, documents: [0, 9, 18].map((i) => betAt(1, i).document) });
        expect(await two.nth(4)).toEqual({ type: MessageType.WINNERS, last: true, documents: [0, 9].map((i) => betAt(2, i).document) });
        expect(a.proc.count('sorteo', 'success') + b.proc.count('sorteo', 'success'), `round ${round}`).toBe(1);
        one.destroy();
        two.destroy();
        await Promise.all([stopServer(a.proc), stopServer(b.proc)]);
      }
    },
    RUN_MS,
  );

  it('a server started for another number of agencies on the same database is refused: exit 2, saying why', async () => {
    const url = await db.database();
    const a = await startPgServer(url, 'A', 5);
    const other = spawnServer(
      { SERVER_PORT: '0', SERVER_AGENCIES: '4', SERVER_STORAGE: 'postgres', SERVER_DATABASE_URL: url, SERVER_ID: 'B' },
      'server-B',
    );
    expect(await other.waitExit()).toEqual({ code: 2, signal: null });
    expect(other.log.find((l) => l.action === 'storage')).toMatchObject({ result: 'fail' });
    expect(other.text).toMatch(/lottery of 5 agencies .* started for 4/);
    expect(other.indexOf('listen')).toBe(-1);
    await stopServer(a.proc);
  });

  /** Mid-run: server `s` has stored agency 1's bets from 500 on (3000 bets in batches of 10), far from all of them. */
  const midRun = (s: StartedServer) =>
    s.proc.waitFor((l) => l.action === 'apuesta_recibida' && l.fields.agencia === '1' && Number(l.fields.lote) >= 500, RUN_MS);

  it(
    'SIGKILL one of two servers mid-run: its clients move to the other and finish, nothing lost or doubled',
    async () => {
      const url = await db.database();
      const [a, b] = await Promise.all([startPgServer(url, 'A', 5), startPgServer(url, 'B', 5)]);
      const clients = startClients([a, b], files, { CLI_BATCH_MAXAMOUNT: '10' });
      await midRun(a);
      a.proc.signal('SIGKILL');
      await a.proc.waitExit();
      await Promise.all(clients.map((c) => c.waitExit(RUN_MS)));
      // Agency 1 was still sending to A: it reconnected, to B, and B served it.
      expect(clients[0]!.count('reconexion', 'success')).toBeGreaterThan(0);
      expect(b.proc.log.some((l) => l.action === 'conexion' && l.result === 'success' && l.fields.agencia === '1')).toBe(true);
      expect(a.proc.count('sorteo', 'success')).toBe(0);
      await expectCompletePgRun({ url, dir, files, clients, servers: [a.proc, b.proc] });
      await stopServer(b.proc);
    },
    RUN_MS,
  );

  it(
    'pg_ctl restart -m fast mid-run: both servers reconnect, the clients finish, nothing lost or doubled',
    async () => {
      const url = await db.database();
      const servers = await Promise.all([startPgServer(url, 'A', 5), startPgServer(url, 'B', 5)]);
      const clients = startClients(servers, files, { CLI_BATCH_MAXAMOUNT: '10' });
      await midRun(servers[0]!);
      await db.cluster.restart('fast');
      await Promise.all(clients.map((c) => c.waitExit(RUN_MS)));
      // Both servers lost the database and came back: the listener (LISTEN/NOTIFY) says so.
      for (const s of servers) await s.proc.waitForAction('db_listener', 'reconnected', RUN_MS);
      await expectCompletePgRun({ url, dir, files, clients, servers: servers.map((s) => s.proc) });
      await Promise.all(servers.map((s) => stopServer(s.proc)));
    },
    RUN_MS,
  );

  it(
    'the same batch through two servers at once, the second connection taking the agency over: stored once (10 agencies)',
    async () => {
      const url = await db.database();
      const AGENCIES = 10;
      const SIZE = 40;
      const [a, b] = await Promise.all([startPgServer(url, 'A', AGENCIES), startPgServer(url, 'B', AGENCIES)]);
      const seen = new Map<string, number>();
      for (let agency = 1; agency <= AGENCIES; agency++) {
        const onA = await bound(a.port, agency);
        const onB = await RawPeer.open(b.port);
        const frame = batchFrame(agency, 0, SIZE);
        // A admits the batch while B, in one write, authenticates the agency (a takeover) and sends it again.
        onA.write(frame);
        onB.write(
          Buffer.concat([
            encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency }),
            encodeMessage({ type: MessageType.PROOF, mac: Buffer.alloc(MAC_BYTES) }),
            frame,
          ]),
        );
        const fromA = outcome(await onA.nth(2));
        const fromB = outcome(await onB.nth(2));
        // Either A's copy committed before B's claim (B's is DUPLICATE), or the claim came first
        // (A's stores nothing: REPLACED) and B's copy is the one stored.
        expect([`${fromA}/${fromB}`]).toEqual([expect.stringMatching(/^(stored\/duplicate|replaced\/stored)$/)]);
        seen.set(`${fromA}/${fromB}`, (seen.get(`${fromA}/${fromB}`) ?? 0) + 1);
        onA.destroy();
        onB.destroy();
      }
      const admin = await adminClient(url);
      expect(await scalar(admin, 'SELECT count(*) AS v FROM bets')).toBe(AGENCIES * SIZE);
      expect((await admin.query('SELECT agency FROM bets GROUP BY agency HAVING count(*) <> $1', [SIZE])).rows).toEqual([]);
      expect(await scalar(admin, 'SELECT count(*) AS v FROM batches')).toBe(AGENCIES);
      expect(
        await scalar(admin, 'SELECT count(*) AS v FROM (SELECT agency, seq FROM bets GROUP BY agency, seq HAVING count(*) > 1) d'),
      ).toBe(0);
      console.info(`same batch on two servers, outcomes A/B: ${JSON.stringify(Object.fromEntries(seen))}`);
      await Promise.all([stopServer(a.proc), stopServer(b.proc)]);
    },
    RUN_MS,
  );
});

/** What became of a batch sent on a connection: its ack's status, or the ERROR that closed the connection. */
function outcome(m: Message | null): string {
  if (m?.type === MessageType.BATCH_ACK)
    return m.status === AckStatus.STORED ? 'stored' : m.status === AckStatus.DUPLICATE ? 'duplicate' : `ack ${m.status}`;
  if (m?.type === MessageType.ERROR && m.code === ErrorCode.REPLACED) return 'replaced';
  return kind(m);
}
