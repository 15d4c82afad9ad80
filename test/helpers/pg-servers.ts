/**
 * Whole runs on PostgreSQL with real processes: server children from dist/ sharing one
 * database (SERVER_STORAGE=postgres), real clients each given the list of servers (its own
 * first), and the checks a complete run must pass, computed from the input files: every bet
 * stored once (the database exported to the course's bets file and read back with
 * load_bets), each agency's winners, one draw across all servers.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { WINNING_NUMBER } from '../../shared/domain/bet.js';
import { loadBets } from '../../server/storage/bets-file.js';
import { exportBets } from '../../server/storage/postgres/export.js';
import { adminClient, scalar } from './pg-backends.js';
import { readAgencyRows, startClient, startServer, type Proc, type StartedServer } from './processes.js';

/** A server on `url` named `id`; SERVER_STORAGE_PATH points nowhere useful: nothing may be written there. */
export function startPgServer(url: string, id: string, agencies: number, env: Record<string, string> = {}): Promise<StartedServer> {
  return startServer({
    storagePath: '/nonexistent/postgres-runs-write-no-file.csv',
    agencies,
    name: `server-${id}`,
    env: { SERVER_STORAGE: 'postgres', SERVER_DATABASE_URL: url, SERVER_ID: id, ...env },
  });
}

/** Agency i's list: server (i-1) mod n first, then the others in order (as make run-postgres spreads them). */
export function serverList(servers: readonly StartedServer[], agency: number): string {
  const n = servers.length;
  return Array.from({ length: n }, (_, k) => `127.0.0.1:${servers[(agency - 1 + k) % n]!.port}`).join(',');
}

/** One client per file (file i is agency i+1), spread over `servers`. */
export function startClients(servers: readonly StartedServer[], files: readonly string[], env: Record<string, string> = {}): Proc[] {
  return files.map((dataFile, i) =>
    startClient({ port: servers[0]!.port, id: i + 1, dataFile, env: { CLI_SERVER_ADDRESS: serverList(servers, i + 1), ...env } }),
  );
}

/** `agency,first,last,document,birthdate,number` with trimmed fields and a canonical number. */
function key(agency: number, f: readonly string[]): string {
  return [agency, f[0], f[1], f[2], f[3], Number(f[4])].join(',');
}

/**
 * Every input bet stored exactly once, nothing else stored (export → load_bets, compared with
 * the files), each client told its own agency's winners (counted from its file), and one draw
 * in all: one `sorteo | success` over every server's log, and the database says drawn.
 */
export async function expectCompletePgRun(opts: {
  url: string;
  dir: string;
  files: readonly string[];
  clients: readonly Proc[];
  servers: readonly Proc[];
}): Promise<void> {
  const { url, dir, files, clients, servers } = opts;
  for (const c of clients) {
    expect(c.exit, `${c.name} exit; last lines:\n${c.lines.slice(-25).join('\n')}`).toEqual({ code: 0, signal: null });
  }
  const inputs = await Promise.all(files.map((f) => readAgencyRows(f)));
  inputs.forEach((rows, i) => {
    const winners = rows.filter((f) => Number(f[4]) === WINNING_NUMBER).length;
    const line = clients[i]!.log.find((l) => l.action === 'consulta_ganadores' && l.result === 'success');
    expect(Number(line?.fields.cant_ganadores), `winners of agency ${i + 1}`).toBe(winners);
  });

  const out = join(dir, `export-${Date.now()}.csv`);
  const exported = await exportBets({ url, out });
  const stored: string[] = [];
  for await (const b of loadBets(out)) stored.push(key(b.agency, [b.firstName, b.lastName, b.document, b.birthdate, String(b.number)]));
  const expected = inputs.flatMap((rows, i) => rows.map((f) => key(i + 1, f)));
  stored.sort();
  expected.sort();
  expect(exported.rows).toBe(expected.length);
  expect(stored.length).toBe(expected.length);
  const diff = stored.findIndex((s, i) => s !== expected[i]);
  expect(diff === -1 ? null : { index: diff, stored: stored[diff], input: expected[diff] }).toBeNull();

  expect(
    servers.reduce((n, s) => n + s.count('sorteo', 'success'), 0),
    'sorteo | success over every server',
  ).toBe(1);
  const admin = await adminClient(url);
  expect((await admin.query('SELECT state FROM lottery')).rows[0]).toEqual({ state: 'done' });
  expect(await scalar(admin, 'SELECT winners AS v FROM lottery')).toBe(
    inputs.reduce((n, rows) => n + rows.filter((f) => Number(f[4]) === WINNING_NUMBER).length, 0),
  );
}

/** SIGTERM, a clean exit (0) that closed the storage. */
export async function stopServer(server: Proc): Promise<void> {
  server.signal('SIGTERM');
  const exit = await server.waitExit();
  expect(exit, `${server.name} exit; last lines:\n${server.lines.slice(-25).join('\n')}`).toEqual({ code: 0, signal: null });
  expect(server.indexOf('close_storage', 'success')).toBeGreaterThan(0);
}
