/**
 * Whole runs with real processes: a server from dist/ and one client per agency, checked
 * against what the input files hold (rows, winners, every stored field).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WINNING_NUMBER } from '../shared/domain/bet.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { ErrorCode, MAC_BYTES, MessageType, PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { loadBets } from '../server/storage/bets-file.js';
import { freePort } from '../shared/util/net.js';
import { DEFAULT_SEED, DEFAULT_SIZES, generateAgencyFile, generateData } from '../tools/gen-data/files.js';
import {
  DATASET_ZIP,
  countStoredRows,
  failures,
  killAll,
  makeTempDir,
  readAgencyRows,
  removeDir,
  spawnServer,
  startClient,
  startServer,
  type Proc,
} from './helpers/processes.js';

const SMALL_SIZES = [3000, 2500, 1600, 900, 100];
const NO_KEY_PROOF = encodeMessage({ type: MessageType.PROOF, mac: Buffer.alloc(MAC_BYTES) });
let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('e2e');
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

interface Run {
  server: Proc;
  clients: Proc[];
  storage: string;
}

/** Server plus one client per file (file i is agency i+1); clients run to their end, then SIGTERM the server. */
async function runLottery(
  name: string,
  files: string[],
  serverEnv: Record<string, string> = {},
  clientEnv: Record<string, string> = {},
): Promise<Run> {
  const storage = join(dir, `${name}-bets.csv`);
  const { proc: server, port } = await startServer({ storagePath: storage, agencies: files.length, env: serverEnv });
  const clients = files.map((dataFile, i) => startClient({ port, id: i + 1, dataFile, env: clientEnv }));
  await Promise.all(clients.map((c) => c.waitExit(120_000)));
  server.signal('SIGTERM');
  await server.waitExit();
  return { server, clients, storage };
}

/** `agency,first,last,document,birthdate,number` with trimmed fields and a canonical number. */
function key(agency: number, f: readonly string[]): string {
  return [agency, f[0], f[1], f[2], f[3], Number(f[4])].join(',');
}

/** Index and values of the first difference between two sorted lists, or null if equal. */
function firstDifference(a: string[], b: string[]): { index: number; stored?: string; input?: string } | null {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return { index: i, stored: a[i], input: b[i] };
  }
  return null;
}

/** Everything a complete, clean run must satisfy, checked against the input files themselves. */
async function expectCompleteRun(run: Run, files: string[]): Promise<void> {
  const { server, clients, storage } = run;
  for (const p of [server, ...clients]) {
    const clean = p.exit?.code === 0 && p.exit.signal === null && failures(p).length === 0;
    expect(
      clean,
      `${p.name}: exit ${JSON.stringify(p.exit)}, failures ${JSON.stringify(failures(p))}; last lines:\n${p.lines.slice(-25).join('\n')}`,
    ).toBe(true);
  }
  expect(server.count('sorteo', 'success')).toBe(1);
  expect(server.count('sorteo', 'fail')).toBe(0);

  const inputs = await Promise.all(files.map(readAgencyRows));
  const total = inputs.reduce((n, rows) => n + rows.length, 0);
  expect(await countStoredRows(storage)).toBe(total);

  inputs.forEach((rows, i) => {
    const winners = rows.filter((f) => Number(f[4]) === WINNING_NUMBER).length;
    const line = clients[i]!.log.find((l) => l.action === 'consulta_ganadores' && l.result === 'success');
    expect(Number(line?.fields.cant_ganadores), `winners of agency ${i + 1}`).toBe(winners);
  });

  const stored: string[] = [];
  for await (const b of loadBets(storage)) stored.push(key(b.agency, [b.firstName, b.lastName, b.document, b.birthdate, String(b.number)]));
  const expected = inputs.flatMap((rows, i) => rows.map((f) => key(i + 1, f)));
  stored.sort();
  expected.sort();
  expect(stored.length).toBe(expected.length);
  expect(firstDifference(stored, expected)).toBeNull();
}

describe('five agencies against one server', () => {
  it('stores the default-size generated data (78,697 bets) and answers each agency its winners', async () => {
    const results = await generateData({ outDir: join(dir, 'default'), agencies: 5, seed: DEFAULT_SEED, sizes: DEFAULT_SIZES });
    const files = results.map((r) => r.path);
    const run = await runLottery('default', files);
    await expectCompleteRun(run, files);
    // The generator's own winner counts agree with the independent count above.
    results.forEach((r, i) => {
      expect(Number(run.clients[i]!.log.find((l) => l.action === 'consulta_ganadores')?.fields.cant_ganadores)).toBe(r.winners);
    });
  });

  it.skipIf(!existsSync(DATASET_ZIP))('stores the course dataset: 78,697 bets, winners 2,3,3,2,0', async () => {
    const out = join(dir, 'dataset');
    execFileSync('unzip', ['-q', '-o', DATASET_ZIP, '-d', out]);
    const files = [1, 2, 3, 4, 5].map((i) => join(out, `agency-${i}.csv`));
    const run = await runLottery('dataset', files);
    await expectCompleteRun(run, files);
    expect(await countStoredRows(run.storage)).toBe(78_697);
    expect(run.clients.map((c) => Number(c.log.find((l) => l.action === 'consulta_ganadores')?.fields.cant_ganadores))).toEqual([
      2, 3, 3, 2, 0,
    ]);
  });

  describe('with fewer workers than agencies', () => {
    let files: string[];
    beforeAll(async () => {
      files = (await generateData({ outDir: join(dir, 'small'), agencies: 5, seed: 42, sizes: SMALL_SIZES })).map((r) => r.path);
    });

    it('completes with SERVER_WORKERS=1 (one pool thread, five sessions)', async () => {
      const run = await runLottery('workers1', files, { SERVER_WORKERS: '1' });
      expect(run.server.log.find((l) => l.action === 'listen')?.fields.workers).toBe('1');
      await expectCompleteRun(run, files);
    });

    it('completes with SERVER_WORKERS=0 (handlers inline on the main thread)', async () => {
      const run = await runLottery('workers0', files, { SERVER_WORKERS: '0' });
      expect(run.server.log.find((l) => l.action === 'listen')?.fields.workers).toBe('0');
      await expectCompleteRun(run, files);
    });
  });
});

describe('single agency runs', () => {
  it('stores a last batch of a single bet (151 rows, batches of 150)', async () => {
    const file = join(dir, 'one-51.csv');
    await generateAgencyFile({ path: file, agency: 1, seed: 151, rows: 151 });
    const run = await runLottery('151', [file], {}, { CLI_BATCH_MAXAMOUNT: '150' });
    await expectCompleteRun(run, [file]);
    const sent = run.clients[0]!.log.filter((l) => l.action === 'apuesta_enviada').map((l) => Number(l.fields.cantidad));
    expect(sent).toEqual([150, 1]);
    const received = run.server.log
      .filter((l) => l.action === 'apuesta_recibida' && l.result === 'success')
      .map((l) => Number(l.fields.cantidad));
    expect(received).toEqual([150, 1]);
  });

  it('a client started before the server retries, then connects and completes', async () => {
    const file = join(dir, 'early.csv');
    await generateAgencyFile({ path: file, agency: 1, seed: 3, rows: 500 });
    const storage = join(dir, 'early-bets.csv');
    const port = await freePort();
    const client = startClient({ port, id: 1, dataFile: file });
    // At least two refused attempts: the client is in its retry loop when the server appears.
    await client.waitFor((l) => l.action === 'connect' && l.result === 'in_progress' && Number(l.fields.intento) >= 2);
    const server = spawnServer({ SERVER_PORT: String(port), SERVER_AGENCIES: '1', SERVER_STORAGE_PATH: storage });
    await server.waitForAction('listen', 'success');
    expect(await client.waitExit()).toEqual({ code: 0, signal: null });
    server.signal('SIGTERM');
    await server.waitExit();
    expect(client.indexOf('connect', 'in_progress')).toBeLessThan(client.indexOf('connect', 'success'));
    await expectCompleteRun({ server, clients: [client], storage }, [file]);
  });

  it('a client whose agency is still held by an old connection takes it over; the old one hears ERROR REPLACED', async () => {
    const file = join(dir, 'busy.csv');
    await generateAgencyFile({ path: file, agency: 1, seed: 4, rows: 300 });
    const storage = join(dir, 'busy-bets.csv');
    const { proc: server, port } = await startServer({ storagePath: storage, agencies: 1 });
    const squatter = connect({ host: '127.0.0.1', port });
    squatter.on('error', () => {});
    const heard: number[] = [];
    const decoder = new FrameDecoder();
    squatter.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        const msg = decodeMessage(f);
        heard.push(msg.type === MessageType.ERROR ? -msg.code : msg.type);
      }
    });
    const squatterClosed = new Promise<void>((resolve) => squatter.once('close', () => resolve()));
    await new Promise<void>((resolve) => squatter.once('connect', () => resolve()));
    // HELLO and the PROOF of a client with no key, back to back (the server takes any mac while auth is off).
    squatter.write(Buffer.concat([encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: 1 }), NO_KEY_PROOF]));
    await server.waitForAction('conexion', 'success');
    const client = startClient({ port, id: 1, dataFile: file });
    expect(await client.waitExit()).toEqual({ code: 0, signal: null });
    await squatterClosed;
    expect(heard).toEqual([MessageType.CHALLENGE, MessageType.WELCOME, -ErrorCode.REPLACED]);
    server.signal('SIGTERM');
    expect(await server.waitExit()).toEqual({ code: 0, signal: null });
    expect(failures(server)).toEqual([]);
    expect(failures(client)).toEqual([]);
    expect(await countStoredRows(storage)).toBe(300);
    expect(client.log.find((l) => l.action === 'consulta_ganadores')?.result).toBe('success');
  });

  it('a finished client waiting for an agency that never finishes gives up at winners.timeout, exit 1', async () => {
    const file = join(dir, 'lonely.csv');
    await generateAgencyFile({ path: file, agency: 1, seed: 5, rows: 50 });
    const { proc: server, port } = await startServer({ storagePath: join(dir, 'lonely-bets.csv'), agencies: 2 });
    const client = startClient({ port, id: 1, dataFile: file, env: { CLI_WINNERS_TIMEOUT: '700ms' } });
    expect(await client.waitExit(10_000)).toEqual({ code: 1, signal: null });
    const exit = client.log.find((l) => l.action === 'exit');
    expect(exit?.result).toBe('fail');
    expect(exit?.fields.error).toMatch(/no draw after 700 ms.*1 of 2 agencies/);
    expect(server.log.filter((l) => l.action === 'consulta_ganadores')).toEqual([]);
    // The held query went with the client's connection: agency 1 can connect again at once.
    const again = connect({ host: '127.0.0.1', port });
    again.on('error', () => {});
    const reply = new Promise<unknown>((resolve) => {
      const decoder = new FrameDecoder();
      again.on('data', (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          const msg = decodeMessage(f);
          if (msg.type !== MessageType.CHALLENGE) resolve(msg);
        }
      });
    });
    // HELLO and the PROOF of a client with no key, back to back (the server takes any mac while auth is off).
    again.write(Buffer.concat([encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: 1 }), NO_KEY_PROOF]));
    expect(await reply).toMatchObject({ type: MessageType.WELCOME, agency: 1 });
    again.destroy();
    server.signal('SIGTERM');
    expect(await server.waitExit()).toEqual({ code: 0, signal: null });
    expect(failures(server)).toEqual([]);
  });

  it('an empty data file still finishes, gets zero winners, and the draw runs', async () => {
    const file = join(dir, 'empty.csv');
    await writeFile(file, '');
    const run = await runLottery('empty', [file]);
    await expectCompleteRun(run, [file]);
    expect(run.server.log.find((l) => l.action === 'sorteo' && l.result === 'success')?.fields.apuestas).toBe('0');
  });
});
