/**
 * `pg_ctl restart -m fast` while two servers store: every connection is cut, the pools and
 * the listeners reconnect, and an operation caught in flight either retries (default) or
 * fails cleanly with StorageUnavailableError (retries off), its retry then stored once or
 * recognised as DUPLICATE. An admin transaction holding an agency's row makes sure an
 * operation is in flight when the restart comes. Through a session, a batch whose retries run
 * out closes the session with ERROR BUSY and a retry hint; the client's retry is stored once.
 */
import { duplexPair } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AgencyAuth } from '../server/auth/agency-auth.js';
import { Draw } from '../server/draw.js';
import { Ingest } from '../server/ingest.js';
import { AgencyRegistry } from '../server/registry.js';
import { Session } from '../server/session.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { AckStatus, ErrorCode, MAC_BYTES, MessageType, PROTOCOL_VERSION, type Message } from '../shared/protocol/messages.js';
import { deferred } from '../shared/util/async.js';
import { Admission, StorageUnavailableError, type RunIn } from '../server/storage/backend.js';
import type { PostgresBackend } from '../server/storage/postgres/postgres-backend.js';
import { POSTGRES, useCluster } from './helpers/postgres.js';
import { adminClient, batchAt, betAt, logProbe, openBackend, scalar, untilWaitingOnLock } from './helpers/pg-backends.js';

const BATCHES = 40;

/** The client end of a session over a duplexPair: null once the server ended the stream. */
interface SessionPeer {
  write(bytes: Buffer): void;
  next(): Promise<Message | null>;
  readonly session: Session;
}
const SIZE = 50;

/** Streams BATCHES batches of `agency` one after the other, as a session would; returns their statuses. */
async function stream(backend: PostgresBackend, agency: number, progress: (done: number) => void): Promise<string[]> {
  const { epoch } = await backend.claim(agency);
  const seen: string[] = [];
  for (let k = 0; k < BATCHES; k++) {
    const run: RunIn = { agency, epoch, batches: [batchAt(agency, k * SIZE, SIZE)] };
    const outcomes = await backend.storeRuns([run]);
    seen.push(outcomes[0]![0]!.status);
    progress(k + 1);
  }
  return seen;
}

describe.skipIf(!POSTGRES.available)('PostgreSQL backend across a database restart', () => {
  const db = useCluster();

  it('pg_ctl restart -m fast mid-stream: every batch stored once, listeners back, the draw wakes the other server', async () => {
    const url = await db.database();
    const probeA = logProbe();
    const probeB = logProbe();
    const [a, b] = await Promise.all([
      openBackend({ url, agencies: 4, serverId: 'A', log: probeA.log, retryMs: 60_000 }),
      openBackend({ url, agencies: 4, serverId: 'B', log: probeB.log, retryMs: 60_000 }),
    ]);
    const holder = await adminClient(url);
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM agencies WHERE agency = 1 FOR UPDATE');
    let resolveHalfway: () => void = () => {};
    const halfway = new Promise<void>((resolve) => {
      resolveHalfway = resolve;
    });
    const streams = [
      stream(a, 1, () => {}), // its first batch waits on the holder's lock
      stream(a, 2, () => {}),
      stream(b, 3, (done) => done === BATCHES / 2 && resolveHalfway()),
      stream(b, 4, () => {}),
    ];
    const admin = await adminClient(url);
    await untilWaitingOnLock(admin, 'loteria:A');
    await halfway;
    await db.cluster.restart('fast');
    const statuses = await Promise.all(streams);
    // A commit cut off by the restart is retried and found done: DUPLICATE, never twice.
    for (const s of statuses) expect(s.every((x) => x === Admission.STORED || x === Admission.DUPLICATE)).toBe(true);
    const check = await adminClient(url);
    expect(await scalar(check, 'SELECT count(*) AS v FROM bets')).toBe(4 * BATCHES * SIZE);
    expect(await scalar(check, 'SELECT count(*) AS v FROM (SELECT agency, seq FROM bets GROUP BY agency, seq HAVING count(*) > 1) d')).toBe(
      0,
    );
    expect((await check.query('SELECT next::int FROM agencies ORDER BY agency')).rows.map((r) => r.next)).toEqual(
      Array(4).fill(BATCHES * SIZE),
    );
    await Promise.all([probeA.waitFor('db_listener', 'reconnected'), probeB.waitFor('db_listener', 'reconnected')]);

    const held = b.waitForDraw();
    for (const [backend, agency] of [
      [a, 1],
      [a, 2],
      [b, 3],
      [b, 4],
    ] as const) {
      const { epoch } = await backend.claim(agency);
      await backend.markFinished(agency, epoch);
    }
    const drawn = await a.draw();
    await held;
    // Bet i wins when i % 9 == 0: 223 of 0..1999 per agency.
    expect(drawn).toMatchObject({ bets: 4 * BATCHES * SIZE, winners: 4 * Math.ceil((BATCHES * SIZE) / 9) });
    expect(await b.winners(3)).toHaveLength(Math.ceil((BATCHES * SIZE) / 9));
  }, 180_000);

  it('with retries off, an operation in flight fails cleanly with StorageUnavailableError and its retry stores it once', async () => {
    const url = await db.database();
    const a = await openBackend({ url, agencies: 1, serverId: 'A', retryMs: 0 });
    const { epoch } = await a.claim(1);
    const holder = await adminClient(url);
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM agencies WHERE agency = 1 FOR UPDATE');
    const run: RunIn = { agency: 1, epoch, batches: [batchAt(1, 0, SIZE)] };
    // The outcome is caught at once: the rejection comes while the restart is awaited.
    const inFlight = a.storeRuns([run]).then(
      () => null,
      (err: unknown) => err,
    );
    const admin = await adminClient(url);
    await untilWaitingOnLock(admin, 'loteria:A');
    await db.cluster.restart('fast');
    const failure = await inFlight;
    expect(failure).toBeInstanceOf(StorageUnavailableError);
    expect((failure as Error).message).toMatch(/storing batches failed: the database is unreachable .*retry: it is safe/);
    expect((await a.storeRuns([run]))[0]).toEqual([{ status: Admission.STORED, first: 0, count: SIZE }]);
    expect((await a.storeRuns([run]))[0]).toEqual([{ status: Admission.DUPLICATE, first: 0, count: SIZE }]);
    const check = await adminClient(url);
    expect(await scalar(check, 'SELECT count(*) AS v FROM bets')).toBe(SIZE);
  }, 120_000);

  it('through a session: a batch whose retries run out gets ERROR BUSY with a hint, and its retry on a new session is stored once', async () => {
    const url = await db.database();
    const probe = logProbe();
    const backend = await openBackend({ url, agencies: 1, serverId: 'A', retryMs: 0, log: probe.log });
    const services = {
      ingest: new Ingest(backend),
      draw: new Draw(backend, probe.log),
      registry: new AgencyRegistry(backend, probe.log),
      auth: new AgencyAuth(null),
    };
    const frame = (() => {
      const builder = new BatchBuilder(SIZE);
      for (let i = 0; i < SIZE; i++) builder.add(betAt(1, i));
      return builder.take(0);
    })();
    const connect = (id: number): SessionPeer => {
      const [client, server] = duplexPair();
      const session = new Session(id, server, services, probe.log);
      const inbox: Array<Message | null> = [];
      let arrived = deferred();
      const decoder = new FrameDecoder();
      client.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) inbox.push(decodeMessage(f));
        arrived.resolve();
      });
      client.on('end', () => {
        inbox.push(null);
        arrived.resolve();
        client.end();
      });
      const next = async (): Promise<Message | null> => {
        while (inbox.length === 0) {
          arrived = deferred();
          await arrived.promise;
        }
        return inbox.shift()!;
      };
      return { write: (b) => client.write(b), next, session };
    };
    const bind = async (id: number): Promise<SessionPeer> => {
      const peer = connect(id);
      peer.write(encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: 1 }));
      expect(await peer.next()).toMatchObject({ type: MessageType.CHALLENGE });
      peer.write(encodeMessage({ type: MessageType.PROOF, mac: Buffer.alloc(MAC_BYTES) }));
      expect(await peer.next()).toMatchObject({ type: MessageType.WELCOME, next: 0 });
      return peer;
    };
    const first = await bind(1);
    const holder = await adminClient(url);
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM agencies WHERE agency = 1 FOR UPDATE');
    first.write(frame);
    const admin = await adminClient(url);
    await untilWaitingOnLock(admin, 'loteria:A');
    await db.cluster.restart('fast');
    const refused = await first.next();
    expect(refused).toMatchObject({ type: MessageType.ERROR, code: ErrorCode.BUSY });
    expect((refused as { message: string }).message).toMatch(/^storage unavailable: storing batches failed: .*retry in 1000 ms$/);
    expect(await first.next()).toBeNull();
    // The client comes back (the hint) and resends from WELCOME's next: stored once.
    const second = await bind(2);
    second.write(frame);
    expect(await second.next()).toMatchObject({ type: MessageType.BATCH_ACK, first: 0, status: AckStatus.STORED, count: SIZE });
    second.write(frame);
    expect(await second.next()).toMatchObject({ type: MessageType.BATCH_ACK, first: 0, status: AckStatus.DUPLICATE });
    const check = await adminClient(url);
    expect(await scalar(check, 'SELECT count(*) AS v FROM bets')).toBe(SIZE);
    await first.session.close();
    await second.session.close();
  }, 120_000);
});
