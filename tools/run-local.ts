/**
 * `make run`: one server and N agency clients natively on 127.0.0.1, logs under run/,
 * then a table of each agency's bets read, sent and winners. Exits non-zero if any
 * process failed or a count does not add up.
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WINNING_NUMBER } from '../shared/domain/bet.js';
import { parseLogLine } from '../shared/logging/parse.js';
import { NodeProcess, killAll } from './lib/processes.js';

const { values } = parseArgs({
  options: {
    agencies: { type: 'string', default: '5' },
    port: { type: 'string', default: '12345' },
    data: { type: 'string', default: 'data' },
    out: { type: 'string', default: 'run' },
  },
});
const agencies = Number(values.agencies);
const port = Number(values.port);
if (!Number.isInteger(agencies) || agencies < 1) throw new Error(`--agencies must be a positive integer, got ${values.agencies}`);
if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`--port must be 1-65535, got ${values.port}`);

const SHOWN = /action: (config|listen|sorteo|consulta_ganadores|notificacion|exit|connect)\b|result: fail/;

/** A child whose lines go to OUT/NAME.log, the interesting ones (and any that is not a log line) to the console too. */
function start(name: string, script: string, env: Record<string, string>): NodeProcess {
  const file = createWriteStream(join(values.out, `${name}.log`));
  const proc = new NodeProcess({
    name,
    args: [script],
    env: { ...process.env, ...env },
    onLine: (line) => {
      file.write(`${line}\n`);
      if (SHOWN.test(line) || parseLogLine(line) === null) console.log(`[${name}] ${line}`);
    },
  });
  void proc.exited.then(() => file.end());
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

/** Waits for the first `action` line; fails if it says fail or the process ends first. */
async function waitFor(proc: NodeProcess, action: string, ms: number): Promise<void> {
  const where = `see ${values.out}/${proc.name}.log`;
  const hit = await proc.waitForAction(action, undefined, ms).catch(() => {
    throw new Error(`${proc.name} did not log ${action}; ${where}`);
  });
  if (hit.result !== 'success') throw new Error(`${proc.name} failed: ${hit.fields.error ?? action}; ${where}`);
}

async function main(): Promise<number> {
  rmSync(values.out, { recursive: true, force: true });
  mkdirSync(values.out, { recursive: true });
  const storage = join(values.out, 'bets.csv');
  const clients: NodeProcess[] = [];
  // The table needs the INFO lines (listen, apuesta_enviada, consulta_ganadores).
  const server = start('server', 'dist/server/main.js', {
    SERVER_HOST: '127.0.0.1',
    SERVER_PORT: String(port),
    SERVER_AGENCIES: String(agencies),
    SERVER_STORAGE_PATH: storage,
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
        CLI_LOG_LEVEL: 'INFO',
      }),
    );
  }
  const codes = (await Promise.all(clients.map((c) => c.exited))).map((e) => e.code);
  const wall = (performance.now() - started) / 1000;
  const serverCode = (await server.stop()).code;
  return report(clients, codes, serverCode, storage, wall);
}

function report(clients: NodeProcess[], codes: Array<number | null>, serverCode: number | null, storage: string, wall: number): number {
  const rows = clients.map((c, i) => {
    const file = countRows(join(values.data, `agency-${i + 1}.csv`));
    const sent = c.log
      .filter((l) => l.action === 'apuesta_enviada' && l.result === 'success')
      .reduce((n, l) => n + Number(l.fields.cantidad ?? 0), 0);
    const won = c.log.find((l) => l.action === 'consulta_ganadores' && l.result === 'success')?.fields.cant_ganadores ?? '-';
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

process.exitCode = await main().catch(async (err: unknown) => {
  console.error(`run-local: ${(err as Error).message}`);
  // A child still running would hold our pipes open and keep this process alive.
  await killAll();
  return 1;
});
