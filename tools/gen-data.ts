/**
 * `gen-data`: deterministic agency bet files in the course's format,
 * `nombre,apellido,documento,nacimiento,numero`, no header, UTF-8, `\r\n` after every line.
 * Same arguments, same bytes (tools/gen-data/rows.ts); files are written whole or not at all
 * (tools/gen-data/files.ts).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SEED, DEFAULT_SIZES, generateData, type AgencyResult, type GenerateDataOptions } from './gen-data/files.js';

const USAGE = `usage: gen-data [--agencies N] [--seed S] [--out DIR] [--sizes A,B,... | --bets N] [--only I,J,...] [--force]
  --agencies N   agencies 1..N (default 5)
  --seed S       integer 0..4294967295 (default ${DEFAULT_SEED}); same arguments give identical files
  --out DIR      output directory (default data); files are DIR/agency-N.csv
  --sizes LIST   rows per agency, cycled (default ${DEFAULT_SIZES.join(',')})
  --bets N       N rows for every agency (instead of --sizes)
  --only LIST    write only these agency numbers; contents do not depend on this
  --force        overwrite existing files (otherwise they are kept)`;

class UsageError extends Error {}

function intArg(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < min || n > max) {
    throw new UsageError(`--${flag}: got ${JSON.stringify(text)}; give an integer from ${min} to ${max}`);
  }
  return n;
}

function listArg(flag: string, text: string, min: number, max: number): number[] {
  return text.split(',').map((item) => intArg(flag, item.trim(), min, max));
}

type CliOptions = Omit<GenerateDataOptions, 'onFile'>;

function parseCli(argv: string[]): CliOptions | 'help' {
  const str = { type: 'string' } as const;
  const flags = {
    agencies: str,
    seed: str,
    out: str,
    sizes: str,
    bets: str,
    only: str,
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  } as const;
  const values = (() => {
    try {
      return parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false }).values;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  if (values.help) return 'help';
  const agencies = intArg('agencies', values.agencies ?? '5', 1, 100_000);
  const seed = intArg('seed', values.seed ?? String(DEFAULT_SEED), 0, 0xffff_ffff);
  if (values.sizes !== undefined && values.bets !== undefined) throw new UsageError('--sizes and --bets exclude each other: give one');
  const sizes =
    values.bets !== undefined
      ? [intArg('bets', values.bets, 0, 1e9)]
      : values.sizes !== undefined
        ? listArg('sizes', values.sizes, 0, 1e9)
        : undefined;
  if (sizes !== undefined && sizes.length > agencies) {
    throw new UsageError(`--sizes lists ${sizes.length} sizes for ${agencies} agencies: give at most one per agency`);
  }
  const only = values.only === undefined ? undefined : [...new Set(listArg('only', values.only, 1, agencies))].sort((a, b) => a - b);
  const out = values.out ?? 'data';
  if (out === '') throw new UsageError('--out: the directory must not be empty');
  return { outDir: out, agencies, seed, sizes, force: values.force ?? false, only };
}

function describe(r: AgencyResult): string {
  const counts = `rows=${r.rows} winners=${r.winners}`;
  return r.kept ? `${r.path} ${counts} kept (file exists; --force regenerates it)` : `${r.path} ${counts}`;
}

async function main(argv: string[]): Promise<number> {
  let opts: CliOptions | 'help';
  try {
    opts = parseCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`gen-data: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  await generateData({ ...opts, onFile: (r) => process.stdout.write(`${describe(r)}\n`) });
  return 0;
}

process.exitCode = await main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`gen-data: ${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});
