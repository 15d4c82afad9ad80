/**
 * `npm run fault-test`: the long form of the fault drills (test/fault/drill.ts) on the built
 * server and clients. Defaults: 5 agencies of 50,000 bets, 20 server SIGKILLs (the files torn
 * by hand after the 5th), 10 client SIGKILLs with another CLI_BATCH_MAXAMOUNT each time, and
 * the kills around the draw. Prints one line per drill; exit code 1 when any check failed.
 * Options: --agencies N --bets N --server-kills N --client-kills N --fsync on|off --keep
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { killAll, killAllOnExit } from '../../tools/lib/processes.js';
import { clientKillDrill, drawKillDrill, serverKillDrill, type DrillReport } from './drill.js';

const { values } = parseArgs({
  options: {
    agencies: { type: 'string', default: '5' },
    bets: { type: 'string', default: '50000' },
    'server-kills': { type: 'string', default: '20' },
    'client-kills': { type: 'string', default: '10' },
    fsync: { type: 'string', default: 'on' },
    keep: { type: 'boolean', default: false },
  },
});

killAllOnExit();
const dir = mkdtempSync(join(tmpdir(), 'loteria-fault-'));
const base = {
  dir,
  agencies: Number(values.agencies),
  bets: Number(values.bets),
  seed: 7574,
  fsync: values.fsync === 'off' ? ('off' as const) : ('on' as const),
  say: (line: string) => console.log(`  ${line}`),
};
const started = Date.now();
const reports: DrillReport[] = [];
try {
  console.log(`fault drills in ${dir}: ${base.agencies} agencies × ${base.bets} bets, SERVER_FSYNC=${base.fsync}`);
  reports.push(await serverKillDrill({ ...base, kills: Number(values['server-kills']), tornAt: 5 }));
  reports.push(await clientKillDrill({ ...base, kills: Number(values['client-kills']) }));
  reports.push(await drawKillDrill(base));
} finally {
  await killAll();
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
}
for (const r of reports) {
  const verdict = r.problems.length === 0 ? 'ok' : `FAILED\n    ${r.problems.join('\n    ')}`;
  console.log(`${r.name}: ${r.kills} kills, ${r.serverRuns} server runs, ${r.cuts} recoveries cut a torn tail: ${verdict}`);
}
console.log(`${Math.round((Date.now() - started) / 1000)} s`);
process.exit(reports.every((r) => r.problems.length === 0) ? 0 : 1);
