/**
 * `npm run export-bets -- --out bets.csv [--database URL] [--schema loteria]`: writes the
 * course's bets file (the file backend's format, readable by load_bets) from the PostgreSQL
 * backend's database, streaming. The database defaults to SERVER_DATABASE_URL.
 */
import { parseArgs } from 'node:util';
import { exportBets } from '../server/storage/postgres/export.js';
import { isEntryPoint } from './lib/entry-point.js';

const USAGE = `usage: npm run export-bets -- --out FILE [--database URL] [--schema NAME]
  --out       the bets file to write (replaced whole at the end; default ./bets.csv)
  --database  postgresql://user@host:port/database (default: $SERVER_DATABASE_URL)
  --schema    the schema holding the lottery's tables (default: loteria)`;

class UsageError extends Error {}

function parseCli(argv: string[]): { out: string; url: string; schema: string } | 'help' {
  let values: { out?: string; database?: string; schema?: string; help?: boolean };
  try {
    values = parseArgs({
      args: argv,
      options: { out: { type: 'string' }, database: { type: 'string' }, schema: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const url = values.database ?? process.env.SERVER_DATABASE_URL ?? '';
  if (url === '') throw new UsageError('no database: pass --database postgresql://user@host:port/db or set SERVER_DATABASE_URL');
  const out = values.out ?? './bets.csv';
  if (out === '') throw new UsageError('--out: the file name must not be empty');
  return { out, url, schema: values.schema ?? 'loteria' };
}

export async function main(argv: string[]): Promise<number> {
  let opts: ReturnType<typeof parseCli>;
  try {
    opts = parseCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`export-bets: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const result = await exportBets(opts);
  const note = result.drawn ? 'drawn' : 'not drawn yet';
  process.stdout.write(`action: export_bets | result: success | file: ${opts.out} | apuestas: ${result.rows} | sorteo: ${note}\n`);
  return 0;
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`export-bets: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
