/**
 * `make run`: the server(s) and the agencies' clients natively, logs under run/, then a table of
 * each agency's bets read, sent and winners. Exits non-zero if any process failed or a count
 * does not add up; with the server's own exit code (2) when it refuses its configuration.
 *
 * The server reads server/config.ini and SERVER_* as always. This sets only:
 *   SERVER_HOST=127.0.0.1         a local run opens no port to the network (--host to change)
 *   SERVER_STORAGE_PATH=run/bets.csv  each run starts from an empty file under --out, never
 *                                 appending to the ./bets.csv of an earlier run
 *   SERVER_PORT, SERVER_AGENCIES  only when --port / --agencies are given (make run PORT= AGENCIES=)
 *   SERVER_AGENCY_KEYS=keys/agencies.keys  the agencies' keys, made first when missing (--keys DIR)
 * and for each client CLI_ID, CLI_SERVER_ADDRESS (the port the server logged in `listen`, so
 * port 0 works), CLI_DATA_FILE and CLI_KEY_FILE=keys/agency-N.key; everything else comes
 * from client/config.yaml.
 *
 * `--storage postgres --servers N` (make run-postgres): a throwaway PostgreSQL cluster and N
 * servers sharing its database (tools/run-local-db.ts), each on a free port (--port P: P, P+1,
 * ...), named server-1..server-N (SERVER_ID, and their logs). Agency i's client lists server
 * ((i-1) mod N) first, then the others in turn: it moves to the next when its server goes.
 * At the end the database is exported to run/bets.csv, so the table and the inspector read
 * the same file as with the file backend, and the cluster is removed.
 *
 * Ctrl-C (SIGINT) or SIGTERM: every child gets one SIGTERM (they run in their own process
 * groups, so the terminal's signal does not reach them a second time and cut their drain
 * short), then the cluster is stopped and removed; a second Ctrl-C kills them at once.
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WINNING_NUMBER } from '../shared/domain/bet.js';
import { loadServerConfig } from '../server/config.js';
import { parseLogLine, type LogLine } from '../shared/logging/parse.js';
import { SERVER_KEYS_FILE, agencyKeyFile, genKeys } from './gen-keys.js';
import { NodeProcess, clientArgs, killAll } from './lib/processes.js';
import { fileStorage, parseStorage, postgresStorage, RunUsageError, type RunStorage } from './run-local-db.js';
import { Progress } from './run-progress.js';

const { values } = parseArgs({
  options: {
    agencies: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    data: { type: 'string', default: 'data' },
    out: { type: 'string', default: 'run' },
    keys: { type: 'string', default: 'keys' },
    storage: { type: 'string', default: 'file' },
    servers: { type: 'string', default: '1' },
  },
});

/** A server's drain is bounded (SERVER_DRAIN_TIMEOUT, at most 8 s): SIGKILL after this. */
const STOP_GRACE_MS = 12_000;
const children: NodeProcess[] = [];
let storage: RunStorage | null = null;
let stopping: NodeJS.Signals | null = null;

const SHOWN = /action: (config|listen|sorteo|consulta_ganadores|notificacion|exit|connect)\b|result: fail/;
let progress: Progress | null = null;

/** A child whose lines go to OUT/NAME.log, the interesting ones (and any that is not a log line) to the console too. */
function start(name: string, args: readonly string[], env: Record<string, string>, onLine?: (l: LogLine) => void): NodeProcess {
  const file = createWriteStream(join(values.out, `${name}.log`));
  const proc = new NodeProcess({
    name,
    args: [...args],
    env: { ...process.env, ...env },
    detached: true,
    onLine: (line) => {
      file.write(`${line}\n`);
      const parsed = parseLogLine(line);
      if (parsed !== null) onLine?.(parsed);
      // On a terminal the progress block stands for the routine lines; failures still show.
      const show = progress?.tty ? /result: fail/.test(line) || !parsed : SHOWN.test(line) || !parsed;
      if (show) (progress ?? { note: (t: string) => console.log(t) }).note(`[${name}] ${line}`);
    },
  });
  void proc.exited.then(() => file.end());
  children.push(proc);
  return proc;
}

function countRows(path: string): { rows: number; winners: number } {
  let rows = 0;
  let winners = 0;
  for (const line of readFileSync(path, 'utf8').split(/\r?\n/)) {
    if (line.trim() === '') continue;
    rows++;
    if (line.trim().endsWith(`,${WINNING_NUMBER}`)) winners++;
  }
  return { rows, winners };
}

class ServerRefused extends Error {
  constructor(
    readonly server: string,
    readonly code: number,
  ) {
    super(`the ${server === 'server' ? 'server' : `server ${server}`} refused to start (exit ${code})`);
  }
}

/** The server's first `action` line: success, or ServerRefused with its exit code (it failed or ended first). */
async function waitFor(proc: NodeProcess, action: string): Promise<LogLine> {
  const hit = await proc.waitForAction(action, undefined, 60_000).catch(() => null);
  if (hit?.result === 'success') return hit;
  if (hit === null && proc.exit === null)
    throw new Error(`${proc.name} did not log ${action} within 60 s; see ${values.out}/${proc.name}.log`);
  throw new ServerRefused(proc.name, (await proc.exited).code ?? 1);
}

/** Generates the agencies' files that are missing (never overwrites), as `make data` does. */
async function ensureData(agencies: number): Promise<void> {
  const missing = Array.from({ length: agencies }, (_, i) => i + 1).filter((id) => !existsSync(join(values.data, `agency-${id}.csv`)));
  if (missing.length === 0) return;
  console.log(`run-local: generating ${values.data}/agency-{${missing.join(',')}}.csv`);
  const args = ['dist/tools/gen-data.js', '--agencies', String(agencies), '--only', missing.join(','), '--out', values.data];
  const gen = new NodeProcess({ name: 'gen-data', args, env: process.env, onLine: (line) => console.log(line) });
  const { code } = await gen.exited;
  if (code !== 0) throw new Error(`generating the data failed (gen-data exit ${code})`);
}

function serverEnv(index: number, name: string, count: number): Record<string, string> {
  const env: Record<string, string> = {
    SERVER_HOST: values.host,
    SERVER_AGENCY_KEYS: join(values.keys, SERVER_KEYS_FILE),
    ...storage!.env(index, name),
  };
  // Several servers on one machine cannot share the ini file's port: each takes a free one.
  if (values.port !== undefined)
    env.SERVER_PORT = count > 1 && /^\d+$/.test(values.port) && values.port !== '0' ? String(Number(values.port) + index) : values.port;
  else if (count > 1) env.SERVER_PORT = '0';
  if (values.agencies !== undefined) env.SERVER_AGENCIES = values.agencies;
  return env;
}

/**
 * Makes the keys of every agency the server will take, before it starts (it refuses to start
 * without them). The count is read the way the server will read it; a configuration the
 * server would refuse is left for the server to report.
 */
function ensureKeys(env: Record<string, string>): void {
  let agencies: number;
  try {
    agencies = loadServerConfig({ ...process.env, ...env, SERVER_AUTH: 'off' }).agencies;
  } catch {
    return;
  }
  const { created } = genKeys(agencies, values.keys);
  if (created.length > 0) console.log(`run-local: made keys for agency ${created.join(', ')} in ${values.keys}/`);
}

/** `host:port` as a client dials it (a wildcard listen address is reached on loopback). */
function addressOf(port: number): string {
  const host = values.host === '0.0.0.0' || values.host === '::' ? '127.0.0.1' : values.host;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Agency `id`'s server list: server ((id-1) mod N) first, then the others in turn. */
function serverList(id: number, addresses: string[]): string {
  const first = (id - 1) % addresses.length;
  return [...addresses.slice(first), ...addresses.slice(0, first)].join(',');
}

async function main(): Promise<number> {
  const { storage: kind, servers: count } = parseStorage(values.storage, values.servers);
  rmSync(values.out, { recursive: true, force: true });
  mkdirSync(values.out, { recursive: true });
  const betsPath = join(values.out, 'bets.csv');
  storage = kind === 'postgres' ? await postgresStorage((line) => console.log(line)) : fileStorage(betsPath);
  if (stopping !== null) return never();
  const names = Array.from({ length: count }, (_, i) => (count === 1 ? 'server' : `server-${i + 1}`));
  ensureKeys(serverEnv(0, names[0]!, count));
  const servers = names.map((name, i) => start(name, ['dist/server/main.cjs'], serverEnv(i, name, count)));
  const configs = await Promise.all(servers.map((s) => waitFor(s, 'config')));
  const agencies = Number(configs[0]!.fields.agencies);
  await ensureData(agencies);
  const addresses = (await Promise.all(servers.map((s) => waitFor(s, 'listen')))).map((l) => addressOf(Number(l.fields.puerto)));
  const files = Array.from({ length: agencies }, (_, i) => join(values.data, `agency-${i + 1}.csv`));
  const totals = files.map((f) => countRows(f));
  progress = new Progress(totals.map((t) => t.rows));
  const started = performance.now();
  const clients = files.map((dataFile, i) => {
    const id = i + 1;
    const env = {
      CLI_ID: String(id),
      CLI_SERVER_ADDRESS: serverList(id, addresses),
      CLI_DATA_FILE: dataFile,
      CLI_KEY_FILE: join(values.keys, agencyKeyFile(id)),
    };
    const proc = start(`client-${id}`, clientArgs('.'), env, (l) => {
      if (l.action === 'apuesta_enviada' && l.result === 'success') progress?.stored(id, Number(l.fields.cantidad ?? 0));
    });
    void proc.exited.then((e) => progress?.ended(id, `exit ${e.code ?? e.signal}`));
    return proc;
  });
  const codes = (await Promise.all(clients.map((c) => c.exited))).map((e) => e.code);
  if (stopping !== null) return never();
  const wall = (performance.now() - started) / 1000;
  progress.close();
  const serverCodes = (await Promise.all(servers.map((s) => s.stop(STOP_GRACE_MS)))).map((e) => e.code);
  if (stopping !== null) return never();
  await storage.collect(betsPath);
  await storage.close();
  return report(clients, totals, codes, names, serverCodes, betsPath, wall);
}

/** While the signal handler stops everything and exits. */
const never = (): Promise<number> => new Promise(() => {});

/** First signal: one SIGTERM to each child, then the cluster; a second: SIGKILL at once. */
async function interrupted(signal: NodeJS.Signals): Promise<void> {
  const code = signal === 'SIGINT' ? 130 : 143;
  if (stopping !== null) {
    await killAll();
    await storage?.close();
    process.exit(code);
  }
  stopping = signal;
  progress?.close();
  console.error(`run-local: ${signal}: stopping the clients and servers (SIGTERM), then the database; again to kill them at once`);
  await Promise.all(children.map((c) => c.stop(STOP_GRACE_MS)));
  await storage?.close();
  console.error(`run-local: stopped; logs in ${values.out}/`);
  process.exit(code);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, (s: NodeJS.Signals) => void interrupted(s));

function report(
  clients: NodeProcess[],
  totals: Array<{ rows: number; winners: number }>,
  codes: Array<number | null>,
  serverNames: string[],
  serverCodes: Array<number | null>,
  betsPath: string,
  wall: number,
): number {
  const rows = clients.map((c, i) => {
    const file = totals[i]!;
    const sent = c.log
      .filter((l) => l.action === 'apuesta_enviada' && l.result === 'success')
      .reduce((n, l) => n + Number(l.fields.cantidad ?? 0), 0);
    const won = c.log.find((l) => l.action === 'consulta_ganadores' && l.result === 'success')?.fields.cant_ganadores ?? '-';
    const ok = codes[i] === 0 && sent === file.rows && won === String(file.winners);
    return { agency: i + 1, inFile: file.rows, sent, winners: won, expected: file.winners, exit: codes[i], ok };
  });
  const stored = existsSync(betsPath) ? countRows(betsPath).rows : 0;
  const total = rows.reduce((n, r) => n + r.inFile, 0);
  console.log('\n agency | bets in file | bets sent | winners | expected | exit');
  console.log('--------+--------------+-----------+---------+----------+-----');
  for (const r of rows) {
    console.log(
      `${String(r.agency).padStart(7)} | ${String(r.inFile).padStart(12)} | ${String(r.sent).padStart(9)} | ${r.winners.padStart(7)} | ${String(r.expected).padStart(8)} | ${r.exit}${r.ok ? '' : '  <-- mismatch'}`,
    );
  }
  const exits = serverNames.map((n, i) => (serverNames.length === 1 ? `server exit ${serverCodes[i]}` : `${n} exit ${serverCodes[i]}`));
  const where = storage?.kind === 'postgres' ? `${betsPath} (exported from PostgreSQL)` : betsPath;
  console.log(
    `\nstored ${stored} of ${total} bets in ${where}; ${exits.join(', ')}; ${wall.toFixed(2)} s from the clients' start to the last exit; logs in ${values.out}/`,
  );
  console.log(`every invariant, from the logs: npm run inspect -- ${values.out}/*.log --bets ${betsPath} --data ${values.data}`);
  return rows.every((r) => r.ok) && stored === total && serverCodes.every((c) => c === 0) ? 0 : 1;
}

process.exitCode = await main().catch(async (err: unknown) => {
  progress?.close();
  if (err instanceof RunUsageError) {
    console.error(`run-local: ${err.message}`);
    return 2;
  }
  // A child still running would hold our pipes open and keep this process alive.
  await killAll();
  await storage?.close();
  // The server's own line (`action: config | result: fail | error: ...`) was relayed above.
  if (err instanceof ServerRefused) {
    console.error(`run-local: ${err.message}; the [${err.server}] line above says why (${values.out}/${err.server}.log)`);
    return err.code;
  }
  console.error(`run-local: ${(err as Error).message}`);
  return 1;
});
