/**
 * The fault drills in short form (test/fault/drill.ts; `npm run fault-test` runs the long
 * one): real server and client processes, the server SIGKILLed mid-run and restarted on the
 * same files (once with a torn tail made by hand), a client SIGKILLed and restarted with
 * another batch size, and kills around the draw. Each ends with every input bet stored once,
 * the right winners, one draw, and a consistent journal.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientKillDrill, drawKillDrill, serverKillDrill, type DrillOptions } from './fault/drill.js';
import { killAll, makeTempDir, removeDir } from './helpers/processes.js';

let base: DrillOptions;
beforeAll(async () => {
  base = { dir: await makeTempDir('fault'), agencies: 3, bets: 4000, seed: 11, fsync: 'on' };
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await removeDir(base.dir);
});

describe('fault drills (short form)', () => {
  it('server SIGKILLed 3 times mid-run, files torn by hand after the 2nd: every bet once, right winners, one draw', async () => {
    const report = await serverKillDrill({ ...base, kills: 3, tornAt: 2 });
    expect(report.problems).toEqual([]);
    expect(report.kills).toBeGreaterThan(0);
  });

  it('client SIGKILLed 3 times and restarted with another CLI_BATCH_MAXAMOUNT: nothing twice, nothing missing', async () => {
    const report = await clientKillDrill({ ...base, agencies: 2, kills: 3 });
    expect(report.problems).toEqual([]);
  });

  it('server SIGKILLed after some agencies finished, as the draw starts, and after it: same winners, one draw', async () => {
    const report = await drawKillDrill({ ...base, bets: 2000 });
    expect(report.problems).toEqual([]);
    expect(report.kills).toBe(3);
  });
});
