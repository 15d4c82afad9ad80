/**
 * `make run`: one server and N agency clients natively on 127.0.0.1, logs under run/,
 * then a table of each agency's bets read, sent and winners. Exits non-zero if any
 * process failed or a count does not add up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { parseLogLine, type LogLine } from '../shared/logging/parse.js';
import { SERVER_KEYS_FILE, agencyKeyFile, genKeys } from './gen-keys.js';

const { values } = parseArgs({
  options: {
    agencies: { type: 'string', default: '5' },
    port: { type: 'string', default: '12345' },
    data: { type: 'string', default: 'data' },
    out: { type: 'string', default: 'run' },
    keys: { type: 'string', default: 'keys' },
  },
});
const agencies = Number(values.agencies);
const port = Number(values.port);
if (!Number.isInteger(agencies) || agencies < 1) throw new Error(`--agencies must be a positive integer, got ${values.agencies}`);
if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port must be 1-65535, got ${values.port}`);

interface Proc {
  name: string;
  child: ChildProcess;
  lines: LogLine[];
  exit: Promise<number | null>;
}

const SHOWN = /action: (config|listen|sorteo|consulta_ganadores|notificacion|exit|connect)\b|result: fail/;

const children: ChildProcess[] = [];

function start(name: string, script: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const file = createWriteStream(join(values.out, `${name}.log`));
  const lines: LogLine[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      file.write(`${line}\n`);
      const parsed = parseLogLine(line);
      if (parsed) lines.push(parsed);
      if (SHOWN.test(line) || !parsed) console.log(`[${name}] ${line}`);
    });
  }
  const exit = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      file.end();
      resolve(code);
    }),
  );
  return { name, child, lines, exit };
}

function countRows(path: string): { rows: number; winners: number } {
  let rows = 0;
  let winners = 0;
  for (const line of readFileSync(path, 'utf8').split(/\r?\n/)) {
    if (line.trim() === '') continue;
    rows++;
    if (line.trim().endsWith(',7574')) winners++;
  }
  return { rows, winners };
}

async function waitFor(proc: Proc, action: string, ms: number): Promise<LogLine> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = proc.lines.find((l) => l.action === action);
    if (hit?.result === 'success') return hit;
    if (hit?.result === 'fail') throw new Error(`${proc.name} failed: ${hit.fields.error ?? action}; see ${values.out}/${proc.name}.log`);
    if (proc.child.exitCode !== null || Date.now() > deadline)
      throw new Error(`${proc.name} did not log ${action}; see ${values.out}/${proc.name}.log`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<number> {
  rmSync(values.out, { recursive: true, force: true });
  mkdirSync(values.out, { recursive: true });
  const storage = join(values.out, 'bets.csv');
  const clients: Proc[] = [];
  // Keys for any agency without one (make run has already made them; a direct run may not have).
  genKeys(agencies, values.keys);
  // The table needs the INFO lines (listen, apuesta_enviada, consulta_ganadores).
  const server = start('server', 'dist/server/main.js', {
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: String(port),
    SERVER_AGENCIES: String(agencies),
    SERVER_STORAGE_PATH: storage,
    SERVER_AGENCY_KEYS: join(values.keys, SERVER_KEYS_FILE),
    LOGGING_LEVEL: 'INFO',
  });
  await waitFor(server, 'listen', 10_000);
  const started = performance.now();
  for (let id = 1; id <= agencies; id++) {
    const dataFile = join(values.data, `agency-${id}.csv`);
    if (!existsSync(dataFile)) throw new Error(`${dataFile} is missing: run \`make data\` (or npm run gen-data -- --agencies ${agencies})`);
    clients.push(
      start(`client-${id}`, 'dist/client/main.js', {
        CLI_ID: String(id),
        CLI_SERVER_ADDRESS: `127.0.0.1:${port}`,
        CLI_DATA_FILE: dataFile,
        CLI_KEY_FILE: join(values.keys, agencyKeyFile(id)),
        CLI_LOG_LEVEL: 'INFO',
      }),
    );
  }
  const codes = await Promise.all(clients.map((c) => c.exit));
  const wall = (performance.now() - started) / 1000;
  server.child.kill('SIGTERM');
  const serverCode = await server.exit;
  return report(clients, codes, serverCode, storage, wall);
}

function report(clients: Proc[], codes: Array<number | null>, serverCode: number | null, storage: string, wall: number): number {
  const rows = clients.map((c, i) => {
    const file = countRows(join(values.data, `agency-${i + 1}.csv`));
    const sent = c.lines
      .filter((l) => l.action === 'apuesta_enviada' && l.result === 'success')
      .reduce((n, l) => n + Number(l.fields.cantidad ?? 0), 0);
    const won = c.lines.find((l) => l.action === 'consulta_ganadores' && l.result === 'success')?.fields.cant_ganadores ?? '-';
    const ok = codes[i] === 0 && sent === file.rows && won === String(file.winners);
    return { agency: i + 1, inFile: file.rows, sent, winners: won, expected: file.winners, exit: codes[i], ok };
  });
  const stored = existsSync(storage) ? countRows(storage).rows : 0;
  const total = rows.reduce((n, r) => n + r.inFile, 0);
  console.log('\n agency | bets in file | bets sent | winners | expected | exit');
  console.log('--------+--------------+-----------+---------+----------+-----');
  for (const r of rows) {
    console.log(
      `${String(r.agency).padStart(7)} | ${String(r.inFile).padStart(12)} | ${String(r.sent).padStart(9)} | ${r.winners.padStart(7)} | ${String(r.expected).padStart(8)} | ${r.exit}${r.ok ? '' : '  <-- mismatch'}`,
    );
  }
  console.log(
    `\nstored ${stored} of ${total} bets in ${storage}; server exit ${serverCode}; ${wall.toFixed(2)} s from the clients' start to the last exit; logs in ${values.out}/`,
  );
  return rows.every((r) => r.ok) && stored === total && serverCode === 0 ? 0 : 1;
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(`run-local: ${(err as Error).message}`);
  // A child still running would hold our pipes open and keep this process alive.
  for (const child of children) child.kill('SIGKILL');
  return 1;
});
