/**
 * The log inspector on a recorded run of two servers sharing PostgreSQL (`make
 * e2e-docker-postgres`, section 2: server1 SIGKILLed mid-run, its clients finishing on
 * server2), whole and doctored. The servers' lines interleave in time; the killed server never
 * comes back. The drill's data is regenerated with gen-data and checked against the recorded
 * hashes, and its bets file rebuilt from it (the e2e script had checked the database's export to
 * be exactly the input, once each: the recorded hash of its sorted rows guards that). Expected
 * figures are counted from the raw lines here with plain regexes.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIX, check, failed, report, sumBets } from './helpers/inspect-cli.js';
import { rebuildRecordedDrill, type Recording } from './helpers/recorded-drill.js';

const LOG = 'pg-kill.log';

let dir: string;
let rec: Recording;
let data: string;
let bets: string;
let betsRows: string[];
let text: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inspect-servers-'));
  ({ rec, data, bets, betsRows } = await rebuildRecordedDrill(dir, 'pg-kill.json'));
  text = await readFile(join(FIX, LOG), 'utf8');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function doctored(name: string, edit: (text: string) => string): Promise<string> {
  const path = join(dir, `${name}.${LOG}`);
  const changed = edit(text);
  if (changed === text) throw new Error(`doctoring ${name} changed nothing`);
  await writeFile(path, changed);
  return path;
}
const judge = (log: string, states: string[] = rec.states) => report([log, '--bets', bets, '--data', data, ...states]);
const client = (n: number): RegExp => new RegExp(`^client${n} +\\|`);
const servers = (n: number): RegExp => new RegExp(`^server[12] +\\|.*agencia: ${n} \\|`);

describe('two servers sharing PostgreSQL, server1 killed mid-run (recorded)', () => {
  it('every invariant holds: the servers side by side, the killed one accepted from Docker exit 137, each bet counted once', async () => {
    const { code, r } = await judge(join(FIX, LOG));
    expect(failed(r)).toEqual([]);
    expect(code).toBe(0);
    expect(r.runs).toHaveLength(1);
    const names = r.runs[0]!.processes.map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['server1', 'server2', 'client1', 'client5']));
    expect(r.runs[0]!.processes.find((p) => p.name === 'server1')).toMatchObject({ exitCode: 137, signal: null });
    expect(check(r, 'processes_exited').evidence.join('\n')).toMatch(/server1: killed \(exit 137 from Docker: SIGKILL\)/);
    expect(r.runs[0]!.draw.successes).toBe(1);
    for (const a of r.runs[0]!.agencies) {
      const rows = betsRows.filter((l) => l.startsWith(`${a.agency},`)).length;
      expect(a.betsStored).toBe(rows);
      expect(a.betsAcknowledged).toBe(sumBets(text, client(a.agency), 'apuesta_enviada'));
      // Bets the killed server stored without a line are held with no line; the rest were logged by one of the two.
      expect(a.betsStoredWithoutLine).toBe(rows - sumBets(text, servers(a.agency), 'apuesta_recibida'));
    }
  });

  it("without Docker's exit code, the killed server's missing exit line is a failure, and so are its clients' lost connections", async () => {
    // Docker's states less server1's `--exit server1=137` pair.
    const at = rec.states.indexOf('server1=137');
    const { code, r } = await judge(join(FIX, LOG), [...rec.states.slice(0, at - 1), ...rec.states.slice(at + 1)]);
    expect(failed(r).sort()).toEqual(['fails_explained', 'processes_exited']);
    expect(check(r, 'fails_explained').evidence.join('\n')).toMatch(/UNEXPLAINED: client1: /);
    expect(code).toBe(1);
  });

  it('a second sorteo on the other server is caught', async () => {
    const log = await doctored('two-draws', (t) => {
      const line = t.split('\n').find((l) => /^server[12] +\|.*action: sorteo \| result: success/.test(l))!;
      const other = line.startsWith('server1') ? 'server2' : 'server1';
      return `${t}${line.replace(/^server[12]/, other).replace(/\d\d\.\d{3}Z/, '59.999Z')}\n`;
    });
    const { r } = await judge(log);
    expect(failed(r)).toContain('one_draw');
  });

  it('a batch acknowledged to client2 that neither server logged stored is caught', async () => {
    const log = await doctored('lost-batch', (t) => {
      const lines = t.split('\n');
      const i = lines.findIndex((l) => /^server2 +\|.*action: apuesta_recibida \| result: success \|.*agencia: 2 \|/.test(l));
      if (i < 0) throw new Error('no stored batch of agency 2 on server2 in the recording');
      return [...lines.slice(0, i), ...lines.slice(i + 1)].join('\n');
    });
    const { r } = await judge(log);
    expect(failed(r)).toContain('stored_equals_acknowledged');
  });
});
