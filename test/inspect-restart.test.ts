/**
 * The log inspector on the two recorded restart drills of `make e2e-docker` (section 3: the
 * server SIGTERMed, then SIGKILLed, mid-run and started again with `docker start`), whole and
 * doctored. The drills' data is regenerated with gen-data and checked against the recorded
 * hashes; their bets file is rebuilt from it (the e2e script had checked the real one to be
 * exactly the input, once each: the recorded hash of its sorted rows guards that). Expected
 * figures are counted from the raw lines here with plain regexes.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rerunLog } from './fixtures/restart-log.js';
import { FIX, check, failed, report, sumBets } from './helpers/inspect-cli.js';
import { rebuildRecordedDrill, type Recording } from './helpers/recorded-drill.js';

const DRILLS = { term: 'restart-term.log', kill: 'restart-kill.log' } as const;
type Drill = keyof typeof DRILLS;

let dir: string;
let rec: Recording;
let data: string;
let bets: string;
let betsRows: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inspect-restart-'));
  ({ rec, data, bets, betsRows } = await rebuildRecordedDrill(dir, 'restart.json'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const logOf = (d: Drill): Promise<string> => readFile(join(FIX, DRILLS[d]), 'utf8');
async function doctored(d: Drill, name: string, edit: (text: string) => string): Promise<string> {
  const path = join(dir, `${name}.${DRILLS[d]}`);
  const text = await logOf(d);
  const changed = edit(text);
  if (changed === text) throw new Error(`doctoring ${name} changed nothing`);
  await writeFile(path, changed);
  return path;
}
const judge = (log: string, extra: string[] = [], states?: string[]) =>
  report([log, '--bets', bets, '--data', data, ...(states ?? rec.states), ...extra]);
const client = (n: number): RegExp => new RegExp(`^client${n} +\\|`);
const server = (n: number): RegExp => new RegExp(`^server +\\|.*agencia: ${n} \\|`);

describe('recorded restart drills', () => {
  it.each(['term', 'kill'] as const)('3%s: every invariant holds, each bet counted once across the restart', async (d) => {
    const text = await logOf(d);
    const { code, r } = await judge(join(FIX, DRILLS[d]));
    expect(failed(r)).toEqual([]);
    expect(code).toBe(0);
    expect(r.runs).toHaveLength(1);
    expect(r.runs[0]!.processes.filter((p) => p.name === 'server')).toHaveLength(2);
    const files = check(r, 'data_files').evidence.join('\n');
    for (const a of r.runs[0]!.agencies) {
      const rows = betsRows.filter((l) => l.startsWith(`${a.agency},`)).length;
      const acked = sumBets(text, client(a.agency), 'apuesta_enviada');
      expect(a.betsStored).toBe(rows);
      expect(a.betsAcknowledged).toBe(acked);
      expect(a.betsStoredWithoutLine).toBe(rows - sumBets(text, server(a.agency), 'apuesta_recibida'));
      if (acked < rows) expect(files).toMatch(new RegExp(`agency ${a.agency}: .* ${rows - acked} already on the server at a WELCOME`));
    }
    // Each drill has a client that lost acknowledgements and read them back from WELCOME.
    expect(check(r, 'stored_equals_acknowledged').evidence.join('\n')).toMatch(
      /stored, the acknowledgement lost, then reported by WELCOME/,
    );
  });

  it('3term: the first server lifetime stopped by SIGTERM in order, the clients failing for that reason', async () => {
    const { r } = await judge(join(FIX, DRILLS.term));
    expect(r.runs[0]!.processes[0]).toMatchObject({ name: 'server', signal: 'SIGTERM', exitCode: 0 });
    const fails = check(r, 'fails_explained').evidence.filter((l) => l.includes(': client'));
    expect(fails.length).toBeGreaterThan(0);
    for (const line of fails) expect(line).toMatch(/^explained: client\d.*the server had stopped \(SIGTERM/);
    expect(check(r, 'recovery_accounted').evidence.join('\n')).toMatch(
      /server lifetime 2 \(after a clean exit\) recovered (\d+) bets; the log accounts for \1$/m,
    );
  });

  it('3kill: bets stored by the killed server with no line are accounted by the next start', async () => {
    const text = await logOf('kill');
    const { r } = await judge(join(FIX, DRILLS.kill));
    const unlogged = r.runs[0]!.agencies.reduce((n, a) => n + a.betsStoredWithoutLine, 0);
    expect(unlogged).toBeGreaterThan(0);
    const recovered = Number(/server lifetime 2 .*?recovered (\d+) bets/.exec(check(r, 'recovery_accounted').evidence.join('\n'))![1]);
    // The second start's `recuperacion | apuestas` holds what the first lifetime logged stored, plus the unlogged.
    const serverLines = text.split('\n').filter((l) => /^server /.test(l));
    const restart = serverLines.findIndex((l, i) => i > 0 && l.includes('action: config | result: success'));
    const loggedBefore = sumBets(serverLines.slice(0, restart).join('\n'), /^server/, 'apuesta_recibida');
    expect(Number(/recuperacion \| result: success \| apuestas: (\d+)/.exec(serverLines.slice(restart).join('\n'))![1])).toBe(recovered);
    expect(recovered).toBe(loggedBefore + unlogged);
    expect(check(r, 'processes_exited').evidence[0]).toMatch(/^server: no exit line \(killed, as by SIGKILL\), started again at/);
    for (const line of check(r, 'fails_explained').evidence.filter((l) => l.includes(': client')))
      expect(line).toMatch(/the server had ended with no exit line \(killed\)/);
  });

  it('a server lifetime with no exit line fails unless it was started again', async () => {
    const log = join(FIX, DRILLS.kill);
    const clients = rec.states.filter((s, i) => s !== 'server' && rec.states[i + 1] !== 'server');
    for (const states of [clients, [...clients, '--exit', 'server=137']]) {
      const { r } = await judge(log, [], states);
      expect(failed(r)).toEqual(['processes_exited']);
      const [first, second] = check(r, 'processes_exited').evidence;
      expect(first).toMatch(/^server: no exit line \(killed, as by SIGKILL\), started again/);
      expect(second).toMatch(/^server: (no exit line: killed, crashed, or still running|exited code 137 \(docker\) without an exit line)/);
    }
  });
});

describe('doctored restart drills are caught', () => {
  it.each(['term', 'kill'] as const)('3%s: a bet acknowledged but missing from the bets file', async (d) => {
    const short = join(dir, `short-${d}.csv`);
    const gone = betsRows.findIndex((l) => l.startsWith('2,') && !/,7574$/.test(l));
    await writeFile(short, `${betsRows.filter((_, i) => i !== gone).join('\n')}\n`);
    const { code, r } = await report([join(FIX, DRILLS[d]), '--bets', short, '--data', data, ...rec.states]);
    expect(code).toBe(1);
    expect(failed(r)).toEqual(['bets_file_rows']);
    expect(check(r, 'bets_file_rows').evidence.join('\n')).toMatch(/agency 2: 4999 rows in .*, 5000 bets logged stored {2}<-- differ/);
  });

  it('an acknowledged batch the restarted server neither logged stored nor held', async () => {
    const log = await doctored('kill', 'nostore', (t) =>
      t.replace(/^server .*apuesta_recibida \| result: success \| cantidad: 150 \| agencia: 2 \| lote: 4500\n/m, ''),
    );
    const { r } = await judge(log);
    expect(failed(r)).toEqual(expect.arrayContaining(['stored_equals_acknowledged', 'bets_file_rows']));
    expect(check(r, 'stored_equals_acknowledged').evidence.join('\n')).toMatch(
      /agency 2: .*lote 4500 acknowledged but never logged stored/,
    );
  });

  it('a restart that holds fewer bets than the log accounts for, or lost a stored batch', async () => {
    const fewer = await doctored('kill', 'fewer', (t) =>
      t.replace(/(recuperacion \| result: success \| apuestas: )([1-9]\d*)/, (_, a, n) => `${a}${Number(n) - 150}`),
    );
    const a = await judge(fewer);
    expect(failed(a.r)).toEqual(['recovery_accounted']);
    expect(check(a.r, 'recovery_accounted').evidence.join('\n')).toMatch(
      /server lifetime 2 .*<-- it holds 150 bets fewer than the log accounts for/,
    );
    const lost = await doctored('kill', 'lost', (t) =>
      t.replace(/(conexion \| result: success \| sesion: \d+ \| agencia: 2 \| siguiente: )3000/, '$12850'),
    );
    const b = await judge(lost);
    expect(failed(b.r)).toContain('recovery_accounted');
    expect(check(b.r, 'recovery_accounted').evidence.join('\n')).toMatch(
      /no longer holds bets logged stored: agency 2: 150 bets \(2850-2999\)/,
    );
  });

  it('a second sorteo after the restart, or a recovered draw drawn again', async () => {
    const twice = await doctored('kill', 'twice', (t) => {
      const line = /^server .*action: sorteo \| result: success.*$/m.exec(t)![0];
      return t.replace(line, `${line}\n${line.replace(/T(\d\d):(\d\d):(\d\d)\.\d{3}Z/, 'T$1:$2:59.999Z')}`);
    });
    const a = await judge(twice);
    expect(failed(a.r)).toContain('one_draw');
    expect(check(a.r, 'one_draw').evidence[0]).toMatch(/sorteo \| success logged 2 time/);
    const again = await doctored('term', 'again', (t) =>
      t.replace(/(apuestas: [1-9]\d* \| agencias_terminadas: \d+ \| sorteo: )pending/, '$1done'),
    );
    const b = await judge(again);
    expect(failed(b.r)).toContain('one_draw');
    const evidence = check(b.r, 'one_draw').evidence.join('\n');
    expect(evidence).toMatch(/server lifetime 2 recovered a draw that no line logged, though its predecessor logged its exit/);
    expect(evidence).toMatch(/server lifetime 2 recovered the draw and drew again/);
  });

  it('a client that exits 1 after the server came back', async () => {
    const failing = await doctored('term', 'exit1', (t) =>
      t.replace(
        /^(client2 +\| \S+ )INFO {2}action: exit \| result: success.*$/m,
        '$1ERROR action: exit | result: fail | error: server error 7 - agency 2 is busy',
      ),
    );
    const states = rec.states.map((s) => (s === 'client2=0' ? 'client2=1' : s));
    const a = await judge(failing, [], states);
    expect(a.code).toBe(1);
    expect(failed(a.r)).toEqual(['fails_explained']);
    expect(check(a.r, 'fails_explained').evidence).toContainEqual(expect.stringMatching(/^UNEXPLAINED: client2: .*exit \| result: fail/));
    // The log says it exited 0; Docker says 1.
    const b = await judge(join(FIX, DRILLS.kill), [], states);
    expect(failed(b.r)).toEqual(['processes_exited']);
    expect(check(b.r, 'processes_exited').evidence.join('\n')).toMatch(
      /client2: .*<-- its exit line implies exit code 0, Docker reports 1/,
    );
  });

  it('a batch missing from what a client sent across the restart', async () => {
    const gap = await doctored('term', 'gap', (t) =>
      t.replace(/^client1 .*apuesta_enviada \| result: success \| cantidad: 150 \| lote: 4800\n/m, ''),
    );
    const { r } = await judge(gap);
    expect(failed(r)).toEqual(expect.arrayContaining(['stored_equals_acknowledged', 'data_files']));
    expect(check(r, 'data_files').evidence[0]).toMatch(/^agency 1: 5000 rows .*, with a gap, .*<-- differ/);
  });

  it('an OUT_OF_ORDER answer is explained when its client resumed at a later WELCOME, not otherwise', async () => {
    const ooo = (time: string): string =>
      `server     | 2026-12-02T02:${time}Z WARN  action: apuesta_fuera_de_orden | result: fail | cantidad: 150 | agencia: 4 | lote: 5150 | siguiente: 5000`;
    const at = (time: string) =>
      doctored('term', `ooo-${time.replace(/\W/g, '')}`, (t) =>
        t.replace(/^(server .*action: recuperacion \| result: success \| apuestas: [1-9].*)$/m, `$1\n${ooo(time)}`),
      );
    const resumed = await judge(await at('12:59.100'));
    expect(failed(resumed.r)).toEqual([]);
    expect(check(resumed.r, 'fails_explained').evidence).toContainEqual(
      expect.stringMatching(/^explained: .*apuesta_fuera_de_orden.*client4 resumed from bet 5000/),
    );
    const after = await judge(await at('13:00.900'));
    expect(failed(after.r)).toEqual(['fails_explained']);
  });
});

describe('a client run again on the files of a finished draw', () => {
  const bets = (n: number): string => Array.from({ length: n }, (_, i) => `1,Ana,Paz,${i + 1},2000-01-01,${i === 7 ? 7574 : i}`).join('\n');

  it('the bets held from before the log and the recovered draw pass', async () => {
    const file = join(dir, 'rerun-bets.csv');
    await writeFile(file, `${bets(300)}\n`);
    const { code, r } = await report(['-', '--bets', file, '--running', 'server'], rerunLog());
    expect(failed(r)).toEqual([]);
    expect(code).toBe(0);
    expect(r.runs[0]!.agencies[0]).toMatchObject({ betsStored: 300, betsStoredWithoutLine: 300, betsAcknowledged: 0 });
    expect(check(r, 'recovery_accounted').evidence[0]).toMatch(
      /server lifetime 1 \(the first of this log\) recovered 300 bets; the log accounts for 300/,
    );
  });

  it('a draw run again, or a bets file that lacks a held bet, is caught', async () => {
    const file = join(dir, 'rerun-short.csv');
    await writeFile(file, `${bets(299)}\n`);
    const short = await report(['-', '--bets', file, '--running', 'server'], rerunLog());
    expect(failed(short.r)).toEqual(['bets_file_rows']);
    const again = await report(
      ['-', '--running', 'server'],
      rerunLog(['server | 2026-12-01T10:00:03.500Z INFO action: sorteo | result: success | apuestas: 300 | ganadores: 1']),
    );
    expect(failed(again.r)).toEqual(['one_draw']);
    expect(check(again.r, 'one_draw').evidence.join('\n')).toMatch(/recovered the draw and drew again/);
  });
});
