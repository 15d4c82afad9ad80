/**
 * `make run` (tools/run-local.ts) as a child process: the server's settings come from its ini
 * file except the address and the bets file; a bad --port/--agencies ends with the server's
 * own config line and exit 2; port 0 works; off a terminal, plain progress lines.
 * `make run-postgres` (--storage postgres --servers 2) for real: a throwaway cluster, the
 * agencies spread over two servers, every bet once, one draw, the cluster gone at the end,
 * also after a SIGINT mid-run.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES } from './helpers/postgres.js';
import { ROOT } from './helpers/processes.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'run-local-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  readonly out: () => string;
  /** The first output that `re` matches, as it arrives. */
  match(re: RegExp): Promise<RegExpExecArray>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>;
}

function startRunLocal(args: string[], env: Record<string, string> = {}, out = join(dir, 'run')): Running {
  const child = spawn(process.execPath, ['dist/tools/run-local.js', '--out', out, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
  const onData = (s: string): void => {
    text += s;
    for (const w of [...waiters]) {
      const m = w.re.exec(text);
      if (m === null) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(m);
    }
  };
  child.stdout!.setEncoding('utf8').on('data', onData);
  child.stderr!.setEncoding('utf8').on('data', onData);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out: text }));
  });
  const match = (re: RegExp): Promise<RegExpExecArray> => {
    const m = re.exec(text);
    if (m !== null) return Promise.resolve(m);
    return Promise.race([
      new Promise<RegExpExecArray>((resolve) => waiters.push({ re, resolve })),
      done.then(({ out }) => {
        throw new Error(`run-local ended before printing ${re}:\n${out}`);
      }),
    ]);
  };
  return { child, out: () => text, match, done };
}

async function runLocal(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const { code, out } = await startRunLocal(args, env).done;
  return { code, out };
}

describe('make run', () => {
  it.each([
    [['--port', 'abc'], /action: config \| result: fail \| error: SERVER_PORT - "abc" is not an integer/],
    [['--port', '70000'], /action: config \| result: fail \| error: SERVER_PORT - 70000 is out of range/],
    [['--agencies', '0'], /action: config \| result: fail \| error: SERVER_AGENCIES - 0 is out of range/],
  ])('%j: the documented config line, exit 2, no stack trace', async (args, line) => {
    const { code, out } = await runLocal(args);
    expect(out).toMatch(line);
    expect(out).not.toMatch(/^\s+at /m);
    expect(code).toBe(2);
  });

  it('port 0, the settings of its ini file, plain progress lines off a terminal, and logs the inspector accepts', async () => {
    const data = join(dir, 'data');
    const ini = join(dir, 'server.ini');
    // Agencies and drain timeout from this file; make run sets only the host and the bets file.
    await writeFile(
      ini,
      '[DEFAULT]\nSERVER_HOST = 0.0.0.0\nSERVER_PORT = 0\nSERVER_AGENCIES = 2\nSERVER_DRAIN_TIMEOUT = 3s\nSERVER_STORAGE_PATH = ./nope.csv\n',
    );
    const { code, out } = await runLocal(['--data', data], { SERVER_CONFIG: ini });
    expect(code).toBe(0);
    expect(out).toMatch(
      /action: config \| result: success \| host: 127\.0\.0\.1 \| port: 0 \| .*agencies: 2 \| .*storagePath: \S*run\/bets\.csv \| .*drainTimeoutMs: 3000/,
    );
    const port = Number(/action: listen \| result: success \| host: 127\.0\.0\.1 \| puerto: (\d+)/.exec(out)?.[1]);
    expect(port).toBeGreaterThan(0);
    // The missing data was generated, and each agency's file went whole.
    for (const id of [1, 2]) {
      const rows = (await readFile(join(data, `agency-${id}.csv`), 'utf8')).split('\n').filter((l) => l.trim() !== '').length;
      expect(out).toMatch(new RegExp(`^agency +${id} \\[#+\\] +${rows} / ${rows} bets stored  exit 0$`, 'm'));
    }
    expect(out).not.toContain('\x1b[');
    const inspect = spawn(
      process.execPath,
      ['dist/tools/inspect/main.js', ...['server', 'client-1', 'client-2'].map((n) => join(dir, 'run', `${n}.log`))],
      {
        cwd: ROOT,
        stdio: 'ignore',
      },
    );
    expect(await new Promise((resolve) => inspect.once('close', resolve))).toBe(0);
  });
});

const run = promisify(execFile);
const linesOf = (text: string): string[] => text.split(/\r?\n/).filter((l) => l.trim() !== '');

/** Processes whose command line or environment names `marker` (a test's temp directory): pid and command. */
function processesNaming(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (cmd.includes(marker) || env.includes(marker)) found.push(`${pid} ${cmd.replaceAll('\0', ' ').trim()}`);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

describe.skipIf(!POSTGRES.available)('make run-postgres (--storage postgres --servers 2)', () => {
  const AGENCIES = 5;
  let pgDir: string;
  let ini: string;
  let keys: string;

  beforeAll(async () => {
    pgDir = await mkdtemp(join(tmpdir(), 'run-local-pg-'));
    // The cluster goes in here (PG_TMPDIR); as root it runs as `postgres`, which must reach it.
    await chmod(pgDir, 0o755);
    ini = join(pgDir, 'server.ini');
    keys = join(pgDir, 'keys');
    await writeFile(ini, `[DEFAULT]\nSERVER_PORT = 12345\nSERVER_AGENCIES = ${AGENCIES}\nSERVER_DRAIN_TIMEOUT = 3s\n`);
  });
  afterAll(async () => {
    await rm(pgDir, { recursive: true, force: true });
  });

  async function genData(out: string, bets: number): Promise<void> {
    await run(process.execPath, ['dist/tools/gen-data.js', '--agencies', String(AGENCIES), '--bets', String(bets), '--out', out], {
      cwd: ROOT,
    });
  }

  it('two servers on free ports, agency i on server ((i-1) mod 2)+1, every bet once, one draw, the table, the cluster removed', async () => {
    const data = join(pgDir, 'data');
    const out = join(pgDir, 'run');
    await genData(data, 1500);
    const r = startRunLocal(
      ['--storage', 'postgres', '--servers', '2', '--data', data, '--keys', keys],
      { SERVER_CONFIG: ini, PG_TMPDIR: pgDir },
      out,
    );
    const cluster = (await r.match(/a throwaway cluster in (\S+) \(removed at the end\)/))[1]!;
    const { code, out: text } = await r.done;
    expect(text).not.toMatch(/^\s+at /m);
    expect(code).toBe(0);
    expect(existsSync(cluster)).toBe(false);
    const logs = {
      'server-1': await readFile(join(out, 'server-1.log'), 'utf8'),
      'server-2': await readFile(join(out, 'server-2.log'), 'utf8'),
    };
    const ports = new Set<string>();
    for (const [name, log] of Object.entries(logs)) {
      expect(log).toMatch(/action: config \| result: success \|.* storage: postgres/);
      ports.add(/action: listen \| result: success \| host: 127\.0\.0\.1 \| puerto: (\d+)/.exec(log)?.[1] ?? name);
      const served = [...log.matchAll(/action: conexion \| result: success \|.*agencia: (\d+)/g)].map((m) => Number(m[1]));
      const mine = Array.from({ length: AGENCIES }, (_, i) => i + 1).filter((a) => `server-${((a - 1) % 2) + 1}` === name);
      expect(new Set(served)).toEqual(new Set(mine));
    }
    // Not the ini file's 12345: two servers cannot share it.
    expect(ports.size).toBe(2);
    expect(ports.has('12345')).toBe(false);
    const draws = Object.values(logs).flatMap((log) => linesOf(log).filter((l) => /action: sorteo \| result: success/.test(l)));
    expect(draws).toHaveLength(1);
    // The exported bets file is the input, once each, whichever server stored it.
    const expected: string[] = [];
    let winners = 0;
    for (let a = 1; a <= AGENCIES; a++) {
      const rows = linesOf(await readFile(join(data, `agency-${a}.csv`), 'utf8'));
      expected.push(...rows.map((row) => `${a},${row}`));
      const won = rows.filter((row) => row.endsWith(',7574')).length;
      winners += won;
      expect(text).toMatch(new RegExp(`^ +${a} \\| +${rows.length} \\| +${rows.length} \\| +${won} \\| +${won} \\| 0$`, 'm'));
    }
    const stored = linesOf(await readFile(join(out, 'bets.csv'), 'utf8'));
    expect(stored.sort()).toEqual(expected.sort());
    expect(draws[0]).toMatch(new RegExp(`ganadores: ${winners}\\b`));
    expect(text).toMatch(
      new RegExp(
        `stored ${expected.length} of ${expected.length} bets in \\S+ \\(exported from PostgreSQL\\); server-1 exit 0, server-2 exit 0`,
      ),
    );
    const files = ['server-1', 'server-2', ...Array.from({ length: AGENCIES }, (_, i) => `client-${i + 1}`)].map((n) =>
      join(out, `${n}.log`),
    );
    const inspect = await run(process.execPath, ['dist/tools/inspect/main.js', ...files, '--bets', join(out, 'bets.csv'), '--data', data], {
      cwd: ROOT,
    }).catch((err: { stdout: string; code: number }) => err);
    expect(inspect.stdout, inspect.stdout).not.toMatch(/FAIL/);
    expect('code' in inspect ? inspect.code : 0).toBe(0);
  }, 240_000);

  it('SIGINT mid-run: one SIGTERM to every child, each drains and exits, the cluster is removed, exit 130', async () => {
    const data = join(pgDir, 'big');
    const out = join(pgDir, 'run-int');
    await genData(data, 200_000);
    const r = startRunLocal(
      ['--storage', 'postgres', '--servers', '2', '--data', data, '--keys', keys],
      { SERVER_CONFIG: ini, PG_TMPDIR: pgDir },
      out,
    );
    const cluster = (await r.match(/a throwaway cluster in (\S+) \(removed at the end\)/))[1]!;
    await r.match(/\[client-1\] .*action: connect \| result: success/);
    r.child.kill('SIGINT');
    const { code, out: text } = await r.done;
    expect(code).toBe(130);
    expect(text).toMatch(/run-local: SIGINT: stopping the clients and servers/);
    expect(existsSync(cluster)).toBe(false);
    for (const name of ['server-1', 'server-2']) {
      const log = await readFile(join(out, `${name}.log`), 'utf8');
      // One signal each: a second would have cut the drain short ("second signal").
      expect(log).toMatch(/action: shutdown \|.*signal: SIGTERM/);
      expect(log).not.toMatch(/second signal/);
      expect(log).toMatch(/action: exit \| result: success/);
    }
    // Nothing of this run is left: no server, client or postgres process names its folders.
    expect(processesNaming(pgDir)).toEqual([]);
  }, 240_000);
});
