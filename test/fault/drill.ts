/**
 * Fault drills with real processes (the built server and clients from dist/), shared by the
 * short form inside `npx vitest run` (test/fault.test.ts) and the long form
 * `npm run fault-test` (test/fault/main.ts). Each drill returns what it saw and the list of
 * problems; an empty list is a pass. What is checked at the end is computed from the input
 * files, independently of the server: every input bet is in bets.csv exactly once (the
 * multiset of rows), each agency's winners, one draw, and that recovery finds the bets file
 * and its journal consistent.
 */
import { existsSync, readFileSync, statSync, truncateSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { recoverDurableState } from '../../server/storage/durable-state.js';
import { loadBets } from '../../server/storage/bets-file.js';
import { RECORD_BYTES, RecordKind, scanJournal } from '../../server/storage/journal.js';
import { WINNING_NUMBER } from '../../shared/domain/bet.js';
import { createLogger } from '../../shared/logging/logger.js';
import { freePort } from '../../shared/util/net.js';
import { generateAgencyFile } from '../../tools/gen-data/files.js';
import { readAgencyRows, spawnClient, spawnServer, type Proc } from '../helpers/processes.js';

export interface DrillOptions {
  dir: string;
  agencies: number;
  bets: number;
  seed: number;
  fsync: 'on' | 'off';
  /** Hears one line per notable event. */
  say?: (line: string) => void;
}

export interface DrillReport {
  name: string;
  problems: string[];
  serverRuns: number;
  kills: number;
  /** Restarts whose recovery cut a torn or unrecorded tail. */
  cuts: number;
}

interface Setup {
  files: string[];
  storage: string;
  port: number;
  servers: Proc[];
  report: DrillReport;
}

const random = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1));

/** Resolves at the `n`-th line (already seen or to come) with this action; never rejects. */
function nth(proc: Proc, action: string, n: number): Promise<void> {
  let seen = 0;
  return proc
    .waitFor((l) => l.action === action && ++seen >= n, 300_000)
    .then(
      () => {},
      () => {},
    );
}

async function setup(name: string, o: DrillOptions): Promise<Setup> {
  const files: string[] = [];
  for (let a = 1; a <= o.agencies; a++) {
    const path = join(o.dir, `${name}-agency-${a}.csv`);
    if (!existsSync(path)) await generateAgencyFile({ path, agency: a, seed: o.seed, rows: o.bets });
    files.push(path);
  }
  const report = { name, problems: [], serverRuns: 0, kills: 0, cuts: 0 };
  return { files, storage: join(o.dir, `${name}-bets.csv`), port: await freePort(), servers: [], report };
}

/** Starts a server on the drill's port and files; resolves once it listens (or has failed to start). */
async function startServer(s: Setup, o: DrillOptions): Promise<Proc> {
  const proc = spawnServer(
    {
      SERVER_PORT: String(s.port),
      SERVER_AGENCIES: String(o.agencies),
      SERVER_STORAGE_PATH: s.storage,
      SERVER_FSYNC: o.fsync,
    },
    `server-${s.servers.length + 1}`,
  );
  s.servers.push(proc);
  s.report.serverRuns++;
  const line = await proc.waitFor((l) => l.action === 'listen' || (l.action === 'recuperacion' && l.result === 'fail'), 60_000);
  if (line.action !== 'listen' || line.result !== 'success') s.report.problems.push(`${proc.name} did not start: ${proc.text.slice(-600)}`);
  return proc;
}

function startAgency(s: Setup, a: number, env: Record<string, string> = {}): Proc {
  return spawnClient({
    CLI_SERVER_ADDRESS: `127.0.0.1:${s.port}`,
    CLI_ID: String(a),
    CLI_DATA_FILE: s.files[a - 1],
    CLI_SERVER_CONNECTTIMEOUT: '60s',
    CLI_SERVER_RECONNECTTIMEOUT: '60s',
    CLI_WINNERS_TIMEOUT: '300s',
    ...env,
  });
}

async function kill(s: Setup, proc: Proc): Promise<void> {
  proc.signal('SIGKILL');
  await proc.exited;
  s.report.kills++;
}

/**
 * A torn tail made by hand, as a crash in the middle of a group commit could leave it: the
 * journal loses its last record and half of the one before, garbage follows, and bets.csv is
 * cut in the middle of a row of the batches whose records are gone. Recovery must cut both back.
 */
export function tearTail(storage: string): boolean {
  const journal = `${storage}.journal`;
  const scan = scanJournal(readFileSync(journal));
  // The last three records are batches: the two dropped ones belong to agencies still sending
  // (a FINISHED would follow them), which will send those bets again.
  const last = scan.records.slice(-3);
  if (last.length < 3 || !last.every((r) => r.kind === RecordKind.BATCH)) return false;
  const keptEnd = (last[0] as { end: number }).end;
  truncateSync(journal, scan.validBytes - RECORD_BYTES - 13);
  appendFileSync(journal, Buffer.from('garbage after the last record'));
  const size = statSync(storage).size;
  if (size > keptEnd + 5) truncateSync(storage, keptEnd + 5);
  return true;
}

/** Every check of a finished run against the input files. */
async function verify(s: Setup, o: DrillOptions, clients: Proc[][]): Promise<void> {
  const problems = s.report.problems;
  for (const runs of clients) {
    const last = runs.at(-1)!;
    if (last.exit?.code !== 0) problems.push(`${last.name} ended with ${JSON.stringify(last.exit)}: ${last.text.slice(-800)}`);
  }
  const inputs = await Promise.all(s.files.map(readAgencyRows));
  const key = (a: number, f: readonly (string | number)[]): string => [a, f[0], f[1], f[2], f[3], Number(f[4])].join(',');
  const expected = new Map<string, number>();
  inputs.forEach((rows, i) => {
    for (const f of rows) expected.set(key(i + 1, f), (expected.get(key(i + 1, f)) ?? 0) + 1);
  });
  let stored = 0;
  for await (const b of loadBets(s.storage)) {
    stored++;
    const k = key(b.agency, [b.firstName, b.lastName, b.document, b.birthdate, b.number]);
    const left = expected.get(k) ?? 0;
    if (left === 0) problems.push(`stored but not expected (or stored twice): ${k}`);
    else expected.set(k, left - 1);
    if (problems.length > 20) return;
  }
  const missing = [...expected].filter(([, n]) => n > 0);
  if (missing.length > 0) problems.push(`${missing.length} input bets missing from bets.csv, e.g. ${missing[0]![0]}`);
  const total = inputs.reduce((n, r) => n + r.length, 0);
  if (stored !== total) problems.push(`bets.csv holds ${stored} rows for ${total} input bets`);
  inputs.forEach((rows, i) => {
    const want = rows.filter((f) => Number(f[4]) === WINNING_NUMBER).length;
    const got = clients[i]!.at(-1)!.log.find((l) => l.action === 'consulta_ganadores' && l.result === 'success')?.fields.cant_ganadores;
    if (Number(got) !== want) problems.push(`agency ${i + 1} was told ${got} winners, its file has ${want}`);
  });
  const draws = s.servers.reduce((n, p) => n + p.count('sorteo', 'success'), 0);
  const recoveredDrawn = s.servers.some((p) => p.log.some((l) => l.action === 'recuperacion' && l.fields.sorteo === 'done'));
  if (draws > 1 || (draws === 0 && !recoveredDrawn))
    problems.push(`${draws} 'sorteo | result: success' lines over ${s.servers.length} server runs`);
  s.report.cuts = s.servers.filter((p) => p.log.some((l) => l.action === 'recuperacion' && l.fields.bytes_cortados !== undefined)).length;
  try {
    const state = recoverDurableState(s.storage, o.agencies, createLogger({ level: 'silent' }));
    if (state.cut.bets + state.cut.journal > 0) problems.push(`after a clean stop recovery still cut ${JSON.stringify(state.cut)}`);
    if (state.draw === null) problems.push('after the run the journal holds no draw');
  } catch (err) {
    problems.push(`recovery after the run failed: ${(err as Error).message}`);
  }
}

async function stopServer(s: Setup, proc: Proc): Promise<void> {
  proc.signal('SIGTERM');
  const exit = await proc.waitExit(30_000);
  if (exit.code !== 0) s.report.problems.push(`${proc.name} ended with ${JSON.stringify(exit)} on SIGTERM`);
  if (proc.indexOf('close_journal', 'success') < 0) s.report.problems.push(`${proc.name} did not log close_journal`);
}

/**
 * Server SIGKILLed at `kills` random moments while every agency sends, restarted each time on
 * the same files and port; the clients keep running and reconnect. With `tornAt`, the files
 * are torn by hand after that kill.
 */
export async function serverKillDrill(o: DrillOptions & { kills: number; tornAt?: number }): Promise<DrillReport> {
  const s = await setup('server-kills', o);
  let server = await startServer(s, o);
  const clients = s.files.map((_, i) => [startAgency(s, i + 1)]);
  const allDone = Promise.all(clients.map((c) => c[0]!.exited));
  let done = false;
  void allDone.then(() => {
    done = true;
  });
  // Kills spread over the run by progress, whatever the machine's speed: each one after a
  // random number of batches stored by the current server.
  const window = Math.max(2, Math.floor((o.agencies * o.bets) / 150 / (o.kills + 1)));
  for (let k = 1; k <= o.kills && !done; k++) {
    await Promise.race([nth(server, 'apuesta_recibida', random(1, window)), allDone]);
    if (done) break;
    await kill(s, server);
    if (k === o.tornAt && tearTail(s.storage)) o.say?.(`kill ${k}: tore the journal and bets.csv by hand`);
    server = await startServer(s, o);
    o.say?.(
      `kill ${k}: restarted, ${server.log.find((l) => l.action === 'recuperacion' && l.fields.apuestas)?.fields.apuestas} bets recovered`,
    );
  }
  await allDone;
  await stopServer(s, server);
  await verify(s, o, clients);
  return s.report;
}

/**
 * Client of agency 1 SIGKILLed at `kills` random moments and started again each time with
 * another CLI_BATCH_MAXAMOUNT; the other agencies run normally.
 */
export async function clientKillDrill(o: DrillOptions & { kills: number }): Promise<DrillReport> {
  const s = await setup('client-kills', o);
  const server = await startServer(s, o);
  // Small batches first: a window (SEND_WINDOW) of big ones could hold the whole file before the first kill.
  const sizes = [10, 7, 33, 2, 90, 13, 64, 1, 150, 500];
  const size = (run: number): number => sizes[run % sizes.length]!;
  const clients = s.files.map((_, i) => [startAgency(s, i + 1, i === 0 ? { CLI_BATCH_MAXAMOUNT: String(size(0)) } : {})]);
  for (let k = 1; k <= o.kills; k++) {
    const current = clients[0]!.at(-1)!;
    await nth(current, 'apuesta_enviada', random(1, Math.max(1, Math.floor(o.bets / size(k - 1) / (o.kills + 1)))));
    if (current.exit !== null) break;
    await kill(s, current);
    clients[0]!.push(startAgency(s, 1, { CLI_BATCH_MAXAMOUNT: String(size(k)) }));
  }
  await Promise.all(clients.map((c) => c.at(-1)!.exited));
  await stopServer(s, server);
  await verify(s, o, clients);
  return s.report;
}

/**
 * The draw and after it: the server is SIGKILLed once some agencies have finished, then right
 * as the draw starts, then after everything ended; each restart keeps the same winners, draws
 * at most once, and a client run again on the same data stores nothing and gets its winners.
 */
export async function drawKillDrill(o: DrillOptions): Promise<DrillReport> {
  const s = await setup('draw-kills', o);
  let server = await startServer(s, o);
  const early = s.files.slice(0, -1).map((_, i) => [startAgency(s, i + 1)]);
  for (let a = 1; a < o.agencies; a++) {
    await server.waitFor((l) => l.action === 'notificacion' && l.fields.agencia === String(a), 120_000);
  }
  await kill(s, server);
  o.say?.('killed after the first agencies finished');
  server = await startServer(s, o);
  const clients = [...early, [startAgency(s, o.agencies)]];
  await server.waitFor((l) => l.action === 'sorteo' && l.result === 'in_progress', 120_000);
  await kill(s, server);
  o.say?.('killed as the draw started');
  server = await startServer(s, o);
  await Promise.all(clients.map((c) => c[0]!.exited));
  await kill(s, server);
  o.say?.('killed after the draw');
  server = await startServer(s, o);
  const before = readFileSync(s.storage);
  const again = startAgency(s, 1);
  const exit = await again.waitExit(120_000);
  const sent = Number(again.log.find((l) => l.action === 'exit')?.fields.enviadas);
  if (exit.code !== 0 || sent !== 0)
    s.report.problems.push(`a client run again after the draw: exit ${JSON.stringify(exit)}, enviadas ${sent}`);
  if (!readFileSync(s.storage).equals(before)) s.report.problems.push('a client run again after the draw changed bets.csv');
  clients[0]!.push(again);
  await stopServer(s, server);
  await verify(s, o, clients);
  return s.report;
}
