/**
 * The course's bets file from the database: `COPY (SELECT ...) TO STDOUT` streamed row by
 * row into bets-file.ts's own row writer (same quoting, CRLF), so load_bets reads it as it
 * reads the file backend's. Memory stays at a chunk or two: pipeline() carries the file's
 * backpressure back to the COPY stream, which pauses the socket. The file is written under
 * a temporary name and renamed, so an export cut short never looks complete. Rows come in
 * the table's physical order (about the arrival order, like the file backend's): one COPY
 * sees one snapshot, and no sort is paid for.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { betToRow } from '../bets-file.js';
import { StorageConfigError } from '../backend.js';
import { parseExportLine } from './copy-text.js';
import { checkSchemaName } from './schema.js';

export interface ExportOptions {
  readonly url: string;
  readonly schema?: string;
  readonly out: string;
}

export interface ExportResult {
  readonly rows: number;
  /** Whether the draw had been run when the rows were read. */
  readonly drawn: boolean;
}

const SELECT_ROWS = "SELECT agency, first_name, last_name, document, to_char(birthdate, 'YYYY-MM-DD'), number FROM bets";

/** COPY text lines (LF-terminated, possibly split across chunks) to course rows; counts them. */
async function* toRows(source: AsyncIterable<Buffer>, counter: { rows: number }): AsyncGenerator<string> {
  let rest = '';
  // A chunk may end inside a multi-byte character: decode with a streaming decoder.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for await (const chunk of source) {
    const text = rest + decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    let out = '';
    for (const line of lines) out += betToRow(parseExportLine(line, ++counter.rows));
    if (out !== '') yield out;
  }
  rest += decoder.decode();
  if (rest !== '') throw new Error(`COPY output ended inside row ${counter.rows + 1} (no line end): the export is incomplete`);
}

export async function exportBets(opts: ExportOptions): Promise<ExportResult> {
  const schema = checkSchemaName(opts.schema ?? 'loteria');
  const client = new pg.Client({ connectionString: opts.url, options: `-c search_path=${schema}`, application_name: 'loteria-export' });
  await client.connect();
  const tmp = `${opts.out}.${process.pid}.tmp`;
  try {
    const found = await client.query<{ bets: string | null; lottery: string | null }>(
      "SELECT to_regclass('bets')::text AS bets, to_regclass('lottery')::text AS lottery",
    );
    if (found.rows[0]?.bets == null || found.rows[0]?.lottery == null) {
      throw new StorageConfigError(`no lottery tables in schema ${schema} of that database: check --database and --schema`);
    }
    // One transaction: the draw state and the rows come from the same snapshot.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const state = await client.query<{ state: string }>('SELECT state FROM lottery');
    const counter = { rows: 0 };
    const copy = client.query(copyTo(`COPY (${SELECT_ROWS}) TO STDOUT`));
    await pipeline(copy, (source: AsyncIterable<Buffer>) => toRows(source, counter), createWriteStream(tmp));
    await client.query('COMMIT');
    await rename(tmp, opts.out);
    return { rows: counter.rows, drawn: state.rows[0]?.state === 'done' };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    await client.end();
  }
}
