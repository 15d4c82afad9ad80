/**
 * Counting across processes, the lost-update lesson: several server processes, each with
 * its own connections, record FINISHED-style marks at once. A mark is a row under a primary
 * key, so whoever gets there first counts it and a repeat counts nothing; there is no counter
 * to read, increment and write back. Real child processes, released together by a barrier.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { POSTGRES, useCluster } from './helpers/postgres.js';
import { adminClient, openBackend, scalar } from './helpers/pg-backends.js';

const CHILD = fileURLToPath(new URL('./fixtures/pg-stress-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const children = new Set<ChildProcess>();

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([...children].map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
  children.clear();
});

interface Child {
  readonly ready: Promise<void>;
  readonly result: Promise<Record<string, number>>;
  go(): void;
}

/** One fixture process running `job`; `result` is its JSON line, or a failure with its stderr. */
function startChild(job: object): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(job)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    if (out.startsWith('ready\n')) onReady();
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  const result = once(child, 'exit').then(([code]) => {
    children.delete(child);
    const last = out.trim().split('\n').pop() ?? '';
    if (code !== 0 || !last.startsWith('{')) throw new Error(`stress child exited ${code}:\n${err}${out}`);
    return JSON.parse(last) as Record<string, number>;
  });
  // A child that dies before `ready` fails the wait too.
  return { ready: Promise.race([ready, result.then(() => undefined)]), result, go: () => child.stdin!.end('go\n') };
}

async function runTogether(jobs: object[]): Promise<Array<Record<string, number>>> {
  const started = jobs.map(startChild);
  await Promise.all(started.map((c) => c.ready));
  for (const c of started) c.go();
  return Promise.all(started.map((c) => c.result));
}

describe.skipIf(!POSTGRES.available)('counting FINISHED across processes on PostgreSQL', () => {
  const db = useCluster();

  it('4 processes, 20 instances × 10,000 marks, every 10th repeated by another instance: exactly 200,000', async () => {
    const url = await db.database();
    const admin = await adminClient(url, 'public');
    await admin.query('CREATE TABLE stress_marks (instance integer, i integer, PRIMARY KEY (instance, i))');
    const PROCESSES = 4;
    const PER_PROCESS = 5;
    const EACH = 10_000;
    const jobs = Array.from({ length: PROCESSES }, (_, p) => ({
      mode: 'marks',
      url,
      instances: Array.from({ length: PER_PROCESS }, (_, k) => p * PER_PROCESS + k),
      total: PROCESSES * PER_PROCESS,
      per: EACH,
    }));
    const results = await runTogether(jobs);
    expect(results.reduce((n, r) => n + r.counted!, 0)).toBe(200_000);
    expect(await scalar(admin, 'SELECT count(*) AS v FROM stress_marks')).toBe(200_000);
    const perInstance = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM stress_marks GROUP BY instance');
    expect(perInstance.rows.map((r) => r.n)).toEqual(Array(20).fill(EACH));
  }, 300_000);

  it('markFinished from 4 processes (real backends), each FINISHED sent twice: 1,000 agencies counted once, one completion', async () => {
    const url = await db.database();
    const AGENCIES = 1_000;
    const EACH = AGENCIES / 4;
    const jobs = Array.from({ length: 4 }, (_, p) => ({
      mode: 'finish',
      url,
      schema: 'loteria',
      agencies: AGENCIES,
      from: p * EACH + 1,
      to: (p + 1) * EACH,
      serverId: `server-${p}`,
    }));
    const results = await runTogether(jobs);
    expect(results.map((r) => r.counted)).toEqual([EACH, EACH, EACH, EACH]);
    expect(results.reduce((n, r) => n + r.completed!, 0)).toBe(1);
    const admin = await adminClient(url);
    expect(await scalar(admin, 'SELECT count(*) AS v FROM finished')).toBe(AGENCIES);
    const check = await openBackend({ url, agencies: AGENCIES });
    expect(await check.progress()).toEqual({ finished: AGENCIES, expected: AGENCIES, drawn: false });
  }, 300_000);
});
