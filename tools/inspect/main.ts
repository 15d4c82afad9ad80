/**
 * `npm run inspect -- [FILE...|-] [--json] [--bets FILE] [--data DIR] [--exit NAME=CODE]... [--running NAME]...`
 * Reads the logs of a run (text or LOG_FORMAT=json lines, with or without Compose's
 * `name | ` prefixes and colours; several files: one process per file, named after it),
 * prints per run the agencies, the draw and each process's shutdown, then the invariants.
 * Exit code: 0 every invariant ok, 1 one failed (or no log line was recognised), 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { analyse, type Input } from './analyse.js';
import { renderText, toJson } from './render.js';

const USAGE = `usage: npm run inspect -- [FILE...|-] [--json] [--bets FILE] [--data DIR] [--exit NAME=CODE]... [--running NAME]...
  FILE       log lines (text or JSON, Compose prefixes and colours allowed); '-' or nothing reads standard input
  --json     print the report as JSON
  --bets F   also check the server's bets file F (rows and winners per agency) against the last run
  --data D   also check that each agency sent every row of D/agency-N.csv and got the winners counted in it
  --exit N=C process N exited with code C (as Docker reports it)
  --running N  process N is still running (its missing exit line is no failure)`;

function usage(problem: string): never {
  process.stderr.write(`inspect: ${problem}\n${USAGE}\n`);
  process.exit(2);
}

function parse(): { files: string[]; json: boolean; bets?: string; data?: string; exits: Map<string, number>; running: Set<string> } {
  let args: ReturnType<
    typeof parseArgs<{ allowPositionals: true; options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> }>
  >;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        bets: { type: 'string' },
        data: { type: 'string' },
        exit: { type: 'string', multiple: true },
        running: { type: 'string', multiple: true },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    usage((err as Error).message);
  }
  const v = args.values as { json?: boolean; bets?: string; data?: string; exit?: string[]; running?: string[]; help?: boolean };
  if (v.help === true) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const exits = new Map<string, number>();
  for (const kv of v.exit ?? []) {
    const m = /^([^=]+)=(-?\d+)$/.exec(kv);
    if (m === null) usage(`--exit takes NAME=CODE, e.g. --exit client1=0; got "${kv}"`);
    exits.set(m[1]!, Number(m[2]));
  }
  const files = args.positionals.length > 0 ? args.positionals : ['-'];
  if (files.includes('-') && process.stdin.isTTY) usage('no FILE given and standard input is a terminal');
  return { files, json: v.json === true, bets: v.bets, data: v.data, exits, running: new Set(v.running ?? []) };
}

/** Standard input as a stream: a synchronous read of fd 0 fails with EAGAIN on a non-blocking pipe. */
async function readInput(name: string): Promise<Input> {
  try {
    if (name !== '-') return { name, text: readFileSync(name, 'utf8') };
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return { name, text: Buffer.concat(chunks).toString('utf8') };
  } catch (err) {
    usage(`cannot read ${name === '-' ? 'standard input' : name}: ${(err as Error).message}`);
  }
}

const opts = parse();
const inputs: Input[] = [];
for (const file of opts.files) inputs.push(await readInput(file));
let result: Awaited<ReturnType<typeof analyse>>;
try {
  result = await analyse(inputs, { exits: opts.exits, running: opts.running, betsPath: opts.bets, dataDir: opts.data });
} catch (err) {
  usage(`cannot read the bets file ${opts.bets}: ${(err as Error).message}`);
}
if (result.lines === 0) {
  process.stderr.write(`inspect: no log line (action: ... | result: ...) found in ${opts.files.join(', ')}\n`);
  process.exit(1);
}
const ok = result.reports.every((r) => r.checks.every((c) => c.ok));
process.stdout.write(opts.json ? `${JSON.stringify(toJson(result.reports), null, 2)}\n` : renderText(result.reports, opts.bets ?? null));
process.exitCode = ok ? 0 : 1;
