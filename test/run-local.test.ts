/**
 * `make run` (tools/run-local.ts) as a child process: the server's settings come from its ini
 * file except the address and the bets file; a bad --port/--agencies ends with the server's
 * own config line and exit 2; port 0 works; off a terminal, plain progress lines.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/processes.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'run-local-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function runLocal(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/tools/run-local.js', '--out', join(dir, 'run'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
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
      /action: config \| result: success \| host: 127\.0\.0\.1 \| port: 0 \| .*agencies: 2 \| storagePath: \S*run\/bets\.csv \| .*drainTimeoutMs: 3000/,
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
