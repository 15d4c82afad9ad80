/**
 * Assertions of the Docker end-to-end check (e2e/docker/run.sh) over captured logs.
 * Log lines are `<container> | <ISO time> <LEVEL> action: x | result: y | key: value ...`
 * (what `docker compose logs --no-color` prints) and are read the graders' way: split on
 * `|`, the value is the text after the last `:` of each part (shared/logging/parse.ts).
 *
 *   check.ts ingest --log F --data DIR --agencies N --bets F
 *   check.ts drill  --log F --signal-time ISO --stopped a,b --exit name=code ... [--sending c]
 *                   [--data DIR --agencies N --bets F]
 * Prints what it verified; exits 1 listing every failed assertion.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { WINNING_NUMBER } from '../../shared/domain/bet.js';
import { parseLogLine, type LogLine } from '../../shared/logging/parse.js';

const TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/;
const CLOSING: Record<'server' | 'client', readonly string[]> = {
  server: ['close_acceptor', 'close_pool', 'close_storage', 'exit'],
  client: ['close_file', 'close_socket', 'exit'],
};

interface Entry extends LogLine {
  container: string;
  time: string;
  raw: string;
}

const failures: string[] = [];
const check = (ok: boolean, what: string): void => {
  if (ok) console.log(`  ok   ${what}`);
  else {
    console.log(`  FAIL ${what}`);
    failures.push(what);
  }
};

function readLog(path: string): Entry[] {
  const entries: Entry[] = [];
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const bar = raw.indexOf('|');
    if (bar < 0) continue;
    const parsed = parseLogLine(raw);
    if (parsed === null) continue;
    const container = raw
      .slice(0, bar)
      .trim()
      .replace(/[-_]1$/, '');
    entries.push({ ...parsed, container, time: TIME.exec(raw)?.[0] ?? '', raw });
  }
  return entries;
}

/** Rows and winners of one agency's input file, counted independently of the client. */
async function countInput(path: string): Promise<{ rows: number; winners: number }> {
  let rows = 0;
  let winners = 0;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    if (line.trim() === '') continue;
    rows++;
    if (Number(line.slice(line.lastIndexOf(',') + 1).trim()) === WINNING_NUMBER) winners++;
  }
  return { rows, winners };
}

/** Rows per agency in the server's bets file (first field of each row). */
function countStored(path: string): Map<number, number> {
  const perAgency = new Map<number, number>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const agency = Number(line.slice(0, line.indexOf(',')));
    perAgency.set(agency, (perAgency.get(agency) ?? 0) + 1);
  }
  return perAgency;
}

const sum = (xs: Iterable<number>): number => {
  let s = 0;
  for (const x of xs) s += x;
  return s;
};
const of = (log: Entry[], container: string, action?: string): Entry[] =>
  log.filter((e) => e.container === container && (action === undefined || e.action === action));
const acked = (log: Entry[], client: string): number =>
  sum(
    of(log, client, 'apuesta_enviada')
      .filter((e) => e.result === 'success')
      .map((e) => Number(e.fields.cantidad)),
  );

async function ingest(opts: Record<string, string | string[] | undefined>): Promise<void> {
  const log = readLog(String(opts.log));
  const agencies = Number(opts.agencies);
  const stored = countStored(String(opts.bets));
  const draws = log.filter((e) => e.action === 'sorteo' && e.result === 'success');
  check(draws.length === 1, `action: sorteo | result: success appears exactly once (got ${draws.length})`);
  const fails = log.filter((e) => e.result === 'fail');
  check(fails.length === 0, `no line has result: fail${fails.length ? `; first: ${fails[0]?.raw}` : ''}`);
  let inputTotal = 0;
  for (let i = 1; i <= agencies; i++) {
    const client = `client${i}`;
    const input = await countInput(join(String(opts.data), `agency-${i}.csv`));
    inputTotal += input.rows;
    const answers = of(log, client, 'consulta_ganadores').filter((e) => e.result === 'success');
    const got = answers.map((e) => e.fields.cant_ganadores).join(',');
    check(
      answers.length === 1 && Number(answers[0]?.fields.cant_ganadores) === input.winners,
      `${client} consulta_ganadores cant_ganadores = ${input.winners} (counted in its file; logged ${got || 'nothing'})`,
    );
    check(
      acked(log, client) === input.rows,
      `${client} apuesta_enviada adds up to its ${input.rows} input rows (got ${acked(log, client)})`,
    );
    check((stored.get(i) ?? 0) === input.rows, `bets file holds ${input.rows} rows of agency ${i} (got ${stored.get(i) ?? 0})`);
  }
  const storedTotal = sum(stored.values());
  check(storedTotal === inputTotal, `bets file has one row per input bet: ${storedTotal} of ${inputTotal}`);
}

async function drill(opts: Record<string, string | string[] | undefined>): Promise<void> {
  const log = readLog(String(opts.log));
  const signal = String(opts['signal-time']);
  const exits = new Map(
    ((opts.exit as string[] | undefined) ?? []).map((kv) => {
      const [name, code] = kv.split('=');
      return [name ?? '', code ?? ''] as const;
    }),
  );
  const before = log.filter((e) => e.time !== '' && e.time < signal);
  const failsBefore = before.filter((e) => e.result === 'fail');
  check(
    failsBefore.length === 0,
    `no result: fail before the signal at ${signal}${failsBefore.length ? `; first: ${failsBefore[0]?.raw}` : ''}`,
  );

  const sending = opts.sending as string | undefined;
  if (sending !== undefined) {
    const batches = before.filter((e) => e.container === sending && e.action === 'apuesta_enviada').length;
    const finished = before.some((e) => e.container === sending && e.action === 'notificacion_enviada');
    check(
      batches > 0 && !finished,
      `${sending} was still sending when signalled (${batches} batches acknowledged, FINISHED ${finished ? 'already sent' : 'not sent'})`,
    );
  }

  for (const name of String(opts.stopped).split(',')) {
    check(exits.get(name) === '0', `${name} exited with code 0 (got ${exits.get(name) ?? 'unknown'})`);
    const kind = name === 'server' ? 'server' : 'client';
    const mine = of(log, name);
    const after = mine.filter((e) => e.time >= signal);
    for (const action of CLOSING[kind]) {
      // A client that had read its whole file closed it before the signal: still logged once.
      const pool = action === 'close_file' ? mine : after;
      check(
        pool.some((e) => e.action === action && e.result === 'success'),
        `${name} logged action: ${action} | result: success`,
      );
    }
    if (kind === 'server') {
      // The server closes its resources one after another; a client's file and socket close concurrently.
      const order = CLOSING.server.map((a) => after.findIndex((e) => e.action === a && e.result === 'success'));
      check(
        order.every((i, k) => i >= 0 && (k === 0 || i > (order[k - 1] ?? -1))),
        `server closed ${CLOSING.server.join(', ')} in that order`,
      );
    }
  }

  if (opts.bets !== undefined) {
    const stored = countStored(String(opts.bets));
    for (let i = 1; i <= Number(opts.agencies); i++) {
      const client = `client${i}`;
      const ack = acked(log, client);
      const received = sum(
        of(log, 'server', 'apuesta_recibida')
          .filter((e) => e.result === 'success' && e.fields.agencia === String(i))
          .map((e) => Number(e.fields.cantidad)),
      );
      const rows = stored.get(i) ?? 0;
      check(
        rows >= ack,
        `agency ${i}: nothing acknowledged is lost (${ack} acknowledged to ${client}, ${received} logged stored by the server, ${rows} rows in the file)`,
      );
    }
  }
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    log: { type: 'string' },
    data: { type: 'string' },
    agencies: { type: 'string', default: '5' },
    bets: { type: 'string' },
    'signal-time': { type: 'string' },
    stopped: { type: 'string' },
    exit: { type: 'string', multiple: true },
    sending: { type: 'string' },
  },
});
const mode = positionals[0];
if (mode === 'ingest') await ingest(values);
else if (mode === 'drill') await drill(values);
else {
  console.error('usage: check.ts ingest|drill --log FILE ...');
  process.exit(2);
}
if (failures.length > 0) {
  console.log(`${failures.length} assertion(s) failed`);
  process.exit(1);
}
