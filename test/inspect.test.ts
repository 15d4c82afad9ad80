/**
 * The log inspector (`npm run inspect`, dist/tools/inspect/main.js) as a user runs it, on
 * recorded logs (test/fixtures/logs: a Docker run, two SIGTERM drills, a refused
 * configuration, a native JSON run) and on doctored copies of them, each of which must be
 * caught. Expected figures are counted from the raw lines here with plain regexes.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartLog } from './fixtures/restart-log.js';
import { FIX, check, failed, report, run, sumBets } from './helpers/inspect-cli.js';

const NATIVE = join(FIX, 'native-json');
const NATIVE_LOGS = ['server', 'client-1', 'client-2', 'client-3'].map((n) => join(NATIVE, `${n}.log`));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inspect-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function doctor(name: string, edit: (text: string) => string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, edit(await readFile(join(FIX, name.replace(/^[^.]+\./, '')), 'utf8')));
  return path;
}

describe('recorded runs', () => {
  it('a Docker run with colours and prefixes: the table adds up and every invariant holds', async () => {
    const text = await readFile(join(FIX, 'compose-good.log'), 'utf8');
    const { code, r } = await report([join(FIX, 'compose-good.log')]);
    expect(failed(r)).toEqual([]);
    expect(code).toBe(0);
    const run = r.runs[0]!;
    expect(run.agencies.map((a) => a.agency)).toEqual([1, 2, 3, 4, 5]);
    for (const a of run.agencies) {
      const client = new RegExp(`^\\S*client${a.agency}\\s*\\S*\\|`);
      expect(a.betsAcknowledged).toBe(sumBets(text, client, 'apuesta_enviada'));
      expect(a.betsStored).toBe(sumBets(text, new RegExp(`server.*agencia: ${a.agency} \\|`), 'apuesta_recibida'));
      expect(a.winners.client).toBe(a.winners.server);
    }
    expect(run.draw.successes).toBe(1);
    expect(run.draw.betsScanned).toBe(1500 + 1200 + 900 + 600 + 300);
    const server = run.processes.find((p) => p.name === 'server')!;
    expect(server).toMatchObject({ signal: 'SIGTERM', exitCode: 0 });
    expect(server.shutdown).toEqual(['close_acceptor', 'close_pool', 'close_storage', 'exit']);
    // Exit codes from the attached output's own `clientN exited with code 0` lines.
    expect(run.processes.filter((p) => p.name.startsWith('client')).map((p) => p.exitCode)).toEqual([0, 0, 0, 0, 0]);
  });

  it('the text report names every invariant ok', async () => {
    const { code, stdout } = await run([join(FIX, 'compose-good.log')]);
    expect(code).toBe(0);
    for (const title of [
      'stored = acknowledged',
      'sorteo | success exactly once',
      'winners equal on both sides',
      'every result: fail explained',
      'every process exited',
    ])
      expect(stdout).toMatch(new RegExp(`ok +.*${title.replace(/[|]/g, '\\|')}`));
    expect(stdout).toContain('all invariants ok');
  });

  it('a native JSON run, one file per process, with its bets file and data', async () => {
    const { code, r } = await report([...NATIVE_LOGS, '--bets', join(NATIVE, 'bets.csv'), '--data', join(NATIVE, 'data')]);
    expect(failed(r)).toEqual([]);
    expect(code).toBe(0);
    const ids = r.runs[0]!.invariants.map((c) => c.id);
    expect(ids).toEqual(expect.arrayContaining(['bets_file_rows', 'bets_file_winners', 'data_files']));
    const rows = (await readFile(join(NATIVE, 'bets.csv'), 'utf8')).split('\n').filter((l) => l.trim() !== '');
    for (const a of r.runs[0]!.agencies) {
      expect(a.betsStored).toBe(rows.filter((l) => l.startsWith(`${a.agency},`)).length);
      expect(a.winners.server).toBe(rows.filter((l) => l.startsWith(`${a.agency},`) && /,7574\r?$/.test(l)).length);
    }
  });

  it('the same run read from standard input as one stream of prefixed lines', async () => {
    let text = '';
    for (const path of NATIVE_LOGS) {
      const name = path.split('/').pop()!.replace('.log', '');
      text += (await readFile(path, 'utf8'))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => `${name} | ${l}\n`)
        .join('');
    }
    const { code, r } = await report(['-'], text);
    expect(code).toBe(0);
    expect(r.runs[0]!.agencies).toHaveLength(3);
  });

  it('a SIGTERM to client1 mid-send: it stopped cleanly, what it had in flight was stored, no draw', async () => {
    const { code, r } = await report([join(FIX, 'drill-client.log')]);
    expect(failed(r)).toEqual([]);
    expect(code).toBe(0);
    const run = r.runs[0]!;
    const client1 = run.processes.find((p) => p.name === 'client1')!;
    expect(client1.signal).toBe('SIGTERM');
    expect(client1.shutdown).toEqual(expect.arrayContaining(['close_file', 'close_socket', 'exit']));
    const a1 = run.agencies[0]!;
    expect(a1.finished.client).toBe(false);
    expect(a1.betsStored).toBeGreaterThanOrEqual(a1.betsAcknowledged);
    expect(run.draw.successes).toBe(0);
    expect(check(r, 'stored_equals_acknowledged').evidence.join('\n')).toMatch(/agency 1: .*stored while client1 was stopping/);
  });

  it('a SIGTERM to the server: its shutdown in order, and the clients failing for that reason', async () => {
    const { code, r } = await report([join(FIX, 'drill-server.log')]);
    expect(failed(r)).toEqual([]);
    expect(code).toBe(0);
    const server = r.runs[0]!.processes.find((p) => p.name === 'server')!;
    expect(server.signal).toBe('SIGTERM');
    expect(server.shutdown.filter((s) => !s.startsWith('close_session'))).toEqual([
      'close_acceptor',
      'close_pool',
      'close_storage',
      'exit',
    ]);
    const fails = check(r, 'fails_explained').evidence;
    expect(fails.length).toBeGreaterThan(0);
    for (const line of fails) expect(line).toMatch(/^explained: client\d.*the server had stopped \(SIGTERM/);
  });

  it('a server SIGTERMed while it waited for its database: no acceptor to close, its stop is in order', async () => {
    const log = join(FIX, 'stopped-starting', 'server.log');
    const { code, r } = await report([log]);
    expect(failed(r)).toEqual([]);
    expect(code).toBe(0);
    expect(check(r, 'processes_exited').evidence[0]).toMatch(
      /^server: exit \| result: success after SIGTERM code 0; close_storage > exit$/,
    );
    // Without its close_storage line, the stop is not in order.
    const cut = join(dir, 'cut', 'server.log');
    await mkdir(join(dir, 'cut'));
    await writeFile(cut, (await readFile(log, 'utf8')).replace(/^.*action: close_storage.*\n/m, ''));
    expect(failed((await report([cut])).r)).toEqual(['processes_exited']);
  });

  it('a refused configuration under Docker: exit 1, the server exited 2, and the summary names the key', async () => {
    const { code, r } = await report([join(FIX, 'compose-bad-config.log')]);
    expect(code).toBe(1);
    expect(failed(r)).toEqual(['fails_explained']);
    expect(check(r, 'fails_explained').evidence[0]).toMatch(/^UNEXPLAINED: server: .*action: config \| result: fail \| error: SERVER_PORT/);
    expect(r.runs[0]!.processes.find((p) => p.name === 'server')).toMatchObject({
      exitCode: 2,
      configError: expect.stringMatching(/SERVER_PORT/),
    });
  });
});

describe('doctored logs are caught', () => {
  it('a missing acknowledgement in a completed run', async () => {
    const path = await doctor('noack.compose-good.log', (t) =>
      t.replace(/^.*client2 .*apuesta_enviada \| result: success \| cantidad: 150 \| lote: 4\n/m, ''),
    );
    const { code, r } = await report([path]);
    expect(code).toBe(1);
    expect(failed(r)).toContain('stored_equals_acknowledged');
    expect(check(r, 'stored_equals_acknowledged').evidence.join('\n')).toMatch(
      /agency 2: .*lote 4 stored but never acknowledged to client2/,
    );
  });

  it('an acknowledgement missing in the middle of a drill, not in flight at the signal', async () => {
    const path = await doctor('gap.drill-client.log', (t) =>
      t.replace(/^client1 .*apuesta_enviada \| result: success \| cantidad: 150 \| lote: 3\n/m, ''),
    );
    const { r } = await report([path]);
    expect(check(r, 'stored_equals_acknowledged').ok).toBe(false);
  });

  it('a bet acknowledged that the server never logged stored', async () => {
    const path = await doctor('nostore.drill-server.log', (t) =>
      t.replace(/^server .*apuesta_recibida \| result: success \| cantidad: 150 \| agencia: 1 \| lote: 2\n/m, ''),
    );
    const { r } = await report([path]);
    expect(check(r, 'stored_equals_acknowledged').evidence.join('\n')).toMatch(/lote 2 acknowledged but never logged stored/);
  });

  it('a second sorteo | success', async () => {
    const path = await doctor('twice.compose-good.log', (t) => {
      const line = /^.*action: sorteo \| result: success.*$/m.exec(t)![0];
      return t.replace(line, `${line}\n${line.replace(/(\d\d\.\d{3})Z/, '59.999Z')}`);
    });
    const { code, r } = await report([path]);
    expect(code).toBe(1);
    expect(check(r, 'one_draw').ok).toBe(false);
    expect(check(r, 'one_draw').evidence[0]).toMatch(/sorteo \| success logged 2 time/);
  });

  it('a fail line with no cause in the log', async () => {
    const path = await doctor('fail.compose-good.log', (t) => {
      const line = /^.*server .*action: sorteo \| result: success.*$/m.exec(t)![0];
      return t.replace(
        line,
        `${line}\n${line.replace(/action: sorteo .*$/, 'action: consulta_ganadores | result: fail | agencia: 3 | error: disk on fire')}`,
      );
    });
    const { code, r } = await report([path]);
    expect(code).toBe(1);
    expect(check(r, 'fails_explained').evidence).toEqual([expect.stringMatching(/^UNEXPLAINED: server: .*disk on fire/)]);
  });

  it('a connection dropped before HELLO (its conexion or desconexion line) is explained; a protocol error is not', async () => {
    const insert = (action: string): Promise<string> =>
      doctor(`${action}.compose-good.log`, (t) => {
        const line = /^.*server .*action: listen \| result: success.*$/m.exec(t)![0];
        return t.replace(
          line,
          `${line}\n${line.replace(/action: listen .*$/, `action: ${action} | result: fail | sesion: 9 | agencia: 0 | error: read ECONNRESET`)}`,
        );
      });
    for (const action of ['conexion', 'desconexion']) {
      const probe = await report([await insert(action)]);
      expect(failed(probe.r)).toEqual([]);
      expect(check(probe.r, 'fails_explained').evidence[0]).toMatch(/^explained: .*never said HELLO/);
    }
    const hostile = await report([await insert('protocolo')]);
    expect(failed(hostile.r)).toEqual(['fails_explained']);
  });

  it('winners that differ between the two sides', async () => {
    const path = await doctor('winners.compose-good.log', (t) =>
      t.replace(/^(.*client1 .*consulta_ganadores \| result: success \| cant_ganadores: )(\d+)/m, (_, a, n) => `${a}${Number(n) + 1}`),
    );
    const { r } = await report([path]);
    expect(check(r, 'winners_agree').ok).toBe(false);
  });

  it('a server killed without its exit line', async () => {
    const path = await doctor('killed.drill-server.log', (t) => t.replace(/^server .*action: exit \| result: success\n/m, ''));
    const { r } = await report([path]);
    expect(check(r, 'processes_exited').ok).toBe(false);
  });

  it('a bets file missing a row, or with a winner the draw did not report', async () => {
    const rows = await readFile(join(NATIVE, 'bets.csv'), 'utf8');
    const lines = rows.split('\r\n');
    const short = join(dir, 'short.csv');
    await writeFile(short, lines.filter((_, i) => i !== 5).join('\r\n'));
    const extraWinner = join(dir, 'winner.csv');
    const loser = lines.findIndex((l) => l.startsWith('2,') && !l.endsWith(',7574'));
    await writeFile(extraWinner, lines.map((l, i) => (i === loser ? l.replace(/,\d+$/, ',7574') : l)).join('\r\n'));
    const a = await report([...NATIVE_LOGS, '--bets', short]);
    expect(failed(a.r)).toEqual(['bets_file_rows']);
    const b = await report([...NATIVE_LOGS, '--bets', extraWinner]);
    expect(failed(b.r)).toEqual(['bets_file_winners']);
  });
});

describe('lines added later and restarts', () => {
  it('a batch stored, then acknowledged as apuesta_duplicada by a restarted server, counts once', async () => {
    const { code, r } = await report(['-'], restartLog('enviadas: 600 | almacenadas: 600 | rechazadas: 0 | ganadores: 1'));
    expect(failed(r)).toEqual([]);
    expect(code).toBe(0);
    expect(r.runs).toHaveLength(1);
    expect(r.runs[0]!.agencies[0]).toMatchObject({ betsStored: 600, betsAcknowledged: 600, duplicates: { batches: 1, bets: 150 } });
    expect(check(r, 'client_totals').ok).toBe(true);
  });

  it("client exit totals that disagree with the client's own lines", async () => {
    const { r } = await report(['-'], restartLog('enviadas: 600 | almacenadas: 450 | rechazadas: 0 | ganadores: 1'));
    expect(failed(r)).toEqual(['client_totals']);
  });
});

describe('usage', () => {
  it('exit 2 and the usage on a bad option, an unreadable file or a malformed --exit', async () => {
    for (const args of [['--nope'], [join(dir, 'absent.log')], [join(FIX, 'compose-good.log'), '--exit', 'server']]) {
      const { code, stderr } = await run(args);
      expect(code).toBe(2);
      expect(stderr).toMatch(/^inspect: .*\nusage: npm run inspect/);
    }
  });

  it('exit 1 when no line is a log line', async () => {
    const { code, stderr } = await run(['-'], 'hello\nworld\n');
    expect(code).toBe(1);
    expect(stderr).toMatch(/no log line/);
  });
});
