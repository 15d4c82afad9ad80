/**
 * PostgreSQL's COPY text format for bets, both ways: rows for `COPY bets FROM STDIN` and the
 * parsing of `COPY (...) TO STDOUT` lines for the export. Columns are tab-separated, rows end
 * in LF, and a backslash, tab, LF or CR inside a value is written as a backslash escape
 * (validated names hold no control characters, but the encoding does not rely on it).
 */
import type { Bet } from '../../../shared/domain/bet.js';

/** The columns of `bets` a COPY FROM fills, in the order encodeBetRows writes them. */
export const COPY_IN_COLUMNS = '(agency, batch_first, seq, first_name, last_name, document, birthdate, number)';

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

export function escapeCopyText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!) : value;
}

/** Appends one row per bet of a stored batch: the bet at index i of the batch is the stream's bet first + i. */
export function encodeBetRows(agency: number, first: number, bets: readonly Bet[]): string {
  let text = '';
  for (let i = 0; i < bets.length; i++) {
    const b = bets[i]!;
    text += `${agency}\t${first}\t${first + i}\t${escapeCopyText(b.firstName)}\t${escapeCopyText(b.lastName)}\t${escapeCopyText(b.document)}\t${b.birthdate}\t${b.number}\n`;
  }
  return text;
}

const UNESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** The value of one COPY text field (escapes resolved, including the octal and hex forms COPY FROM accepts). */
export function unescapeCopyText(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return UNESCAPES[e] ?? e;
  });
}

export class CopyRowError extends Error {
  constructor(line: number, problem: string) {
    super(`COPY output row ${line}: ${problem}`);
    this.name = 'CopyRowError';
  }
}

/**
 * One line (without its LF) of `COPY (SELECT agency, first_name, last_name, document,
 * birthdate, number ...) TO STDOUT` back into a bet; `line` numbers the row for the error.
 */
export function parseExportLine(text: string, line: number): Bet {
  const f = text.split('\t');
  if (f.length !== 6) throw new CopyRowError(line, `expected 6 tab-separated fields, found ${f.length}`);
  if (f.includes('\\N')) throw new CopyRowError(line, 'a NULL field (the bets table allows none)');
  const [agency, firstName, lastName, document, birthdate, number] = f.map(unescapeCopyText) as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return { agency: Number(agency), firstName, lastName, document, birthdate, number: Number(number) };
}
