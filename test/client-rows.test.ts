/**
 * Bad rows in an agency file never take good rows with them: every good row is stored,
 * every bad row is reported with its file and line, through readAgencyBetChunks and through
 * the real client against a real server.
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { betsOf, checkDataFile, readAgencyBetChunks, type BadRow } from '../client/bets-reader.js';
import { DataFileError } from '../client/errors.js';
import { loadBets } from '../server/storage/bets-file.js';
import { EXIT_CONFIG } from '../shared/config/values.js';
import type { Bet } from '../shared/domain/bet.js';
import { deferred } from '../shared/util/async.js';
import { countStoredRows, failures, killAll, makeTempDir, removeDir, startClient, startServer } from './helpers/processes.js';

/** [text of the line with its ending, the bet it holds or the error expected for it (null: skipped silently)]. */
const LINES: Array<[string, Bet | RegExp | null]> = [
  ['\uFEFFJuan,Pérez,12345678,1990-01-01,1234\r\n', bet('Juan', 'Pérez', '12345678', '1990-01-01', 1234)],
  ['Ana,Gómez,23456789,1985-05-05,7574\n', bet('Ana', 'Gómez', '23456789', '1985-05-05', 7574)],
  ['Solo,Tres,123\r\n', /expected 5 fields/],
  ['Luis,Paz,34567890,2023-02-30,10\n', /birth date "2023-02-30"/],
  ['Eva,Luna,12A45678,1970-01-01,11\r\n', /document "12A45678"/],
  ['\r\n', null],
  ['Raúl,Díaz,45678901,2000-12-31,10000\n', /number "10000"/],
  [',Ríos,56789012,1999-09-09,12\r\n', /first name/],
  ['  Sofía , Vega ,67890123,2000-02-29,0042\n', bet('Sofía', 'Vega', '67890123', '2000-02-29', 42)],
  ['\n', null],
  ['"María, José",Núñez,78901234,1960-06-06,0\r\n', bet('María, José', 'Núñez', '78901234', '1960-06-06', 0)],
  ['Tomás,Ruiz,89012345,1975-07-07,7574,extra\r\n', /expected 5 fields/],
  ['Iñaki,Ibáñez,9,2001-01-01,9999\n', bet('Iñaki', 'Ibáñez', '9', '2001-01-01', 9999)],
  ['Pedro,Sosa,90123456,1950-13-01,13\r\n', /birth date "1950-13-01"/],
  ['"Zoe,Paz,11111111,1990-01-01,14', /Quote Not Closed/i],
];
const GOOD = LINES.flatMap(([, e]) => (e !== null && !(e instanceof RegExp) ? [e] : []));
const BAD = LINES.flatMap(([, e], i) => (e instanceof RegExp ? [{ line: i + 1, error: e }] : []));

function bet(firstName: string, lastName: string, document: string, birthdate: string, number: number): Bet {
  return { agency: 1, firstName, lastName, document, birthdate, number };
}

let dir: string;
let file: string;

beforeAll(async () => {
  dir = await makeTempDir('client-rows');
  file = join(dir, 'agency-1.csv');
  await writeFile(file, LINES.map(([text]) => text).join(''));
});
afterEach(killAll);
afterAll(async () => {
  await killAll();
  await removeDir(dir);
});

async function readAll(path: string): Promise<{ good: Bet[]; bad: BadRow[] }> {
  const bad: BadRow[] = [];
  const good: Bet[] = [];
  for await (const chunk of readAgencyBetChunks({ path, agency: 1, onBadRow: (r) => bad.push(r) })) good.push(...betsOf(chunk, 1));
  return { good, bad };
}

describe('readAgencyBetChunks on a file with bad rows, a BOM, mixed CRLF/LF and empty lines', () => {
  it('yields every good row, trimmed and canonical, in file order', async () => {
    expect((await readAll(file)).good).toEqual(GOOD);
  });

  it('reports each bad row once, with the file and its line number', async () => {
    const { bad } = await readAll(file);
    expect(bad.map((b) => ({ file: b.file, line: b.line }))).toEqual(BAD.map((b) => ({ file, line: b.line })));
    bad.forEach((b, i) => {
      expect(b.error).toMatch(BAD[i]!.error);
    });
  });

  it('reports an unterminated quote at the line where the quote opens', async () => {
    const path = join(dir, 'open-quote.csv');
    await writeFile(path, 'A,B,1,1990-01-01,1\r\nC,D,2,1990-01-01,2\r\n"E,F,3,1990-01-01,3\r\n');
    const { good, bad } = await readAll(path);
    expect(good.map((b) => b.firstName)).toEqual(['A', 'C']);
    expect(bad.map((b) => b.line)).toEqual([3]);
  });

  it('counts the line breaks inside a quoted field when numbering later rows', async () => {
    const path = join(dir, 'multi-line.csv');
    await writeFile(path, 'A,B,1,1990-01-01,1\r\n"Multi\nLine",X,2,1990-01-01,2\r\n\r\nbad,row\r\nC,D,3,1990-01-01,3\r\n');
    const { good, bad } = await readAll(path);
    expect(good.map((b) => b.firstName)).toEqual(['A', 'C']);
    expect(bad.map((b) => b.line)).toEqual([2, 5]);
    expect(bad[0]!.error).toMatch(/first name/);
    expect(bad[1]!.error).toMatch(/expected 5 fields/);
  });

  it('rejects with the cause when the file does not exist', async () => {
    await expect(readAll(join(dir, 'missing.csv'))).rejects.toThrow(/ENOENT/);
  });
});

describe('readAgencyBetChunks stopped by its signal', () => {
  /** A reader over a file of `rows` good rows, counting its onClose calls. */
  async function reader(name: string, rows: number, signal: AbortSignal) {
    const path = join(dir, name);
    await writeFile(path, Array.from({ length: rows }, (_, i) => `Ana,Paz,${i + 1},2000-02-29,${i % 10000}\n`).join(''));
    const closes = { count: 0, closed: deferred() };
    const chunks = readAgencyBetChunks({
      path,
      agency: 1,
      signal,
      onBadRow: () => {},
      onClose: () => {
        closes.count++;
        closes.closed.resolve();
      },
    });
    return { chunks, closes };
  }

  it('an abort while the consumer holds a chunk closes the file at once; the next read rejects; onClose once', async () => {
    const abort = new AbortController();
    const { chunks, closes } = await reader('abort-held.csv', 20_000, abort.signal);
    const first = await chunks.next();
    expect(first.done).toBe(false);
    abort.abort();
    await closes.closed.promise;
    await expect(chunks.next()).rejects.toThrow(/abort/i);
    expect(await chunks.next()).toEqual({ done: true, value: undefined });
    expect(closes.count).toBe(1);
  });

  it('a signal aborted before the first read: nothing is read, onClose once', async () => {
    const abort = new AbortController();
    abort.abort();
    const { chunks, closes } = await reader('abort-early.csv', 10, abort.signal);
    await expect(chunks.next()).rejects.toThrow(/abort/i);
    expect(closes.count).toBe(1);
  });

  it('leaving the loop early (return) closes the file; onClose once', async () => {
    const { chunks, closes } = await reader('return.csv', 20_000, new AbortController().signal);
    await chunks.next();
    await chunks.return(undefined);
    expect(closes.count).toBe(1);
  });
});

describe('checkDataFile (before connecting)', () => {
  it('takes a regular file and refuses a missing one, a directory and a FIFO, naming the path and what to do', async () => {
    await expect(checkDataFile(file)).resolves.toBeUndefined();
    const fifo = join(dir, 'agency.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const [path, why] of [
      [join(dir, 'nope.csv'), '(ENOENT)'],
      [dir, '(it is a directory, not a file)'],
      [fifo, '(it is not a regular file)'],
    ] as const) {
      const err = await checkDataFile(path).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err, path).toBeInstanceOf(DataFileError);
      expect(err?.message).toContain(`cannot read the data file ${path} ${why}; set CLI_DATA_FILE or data.file`);
    }
  });
});

describe('the client against a real server', () => {
  it('stores exactly the good rows and logs apuesta_invalida with file and line for each bad one', async () => {
    const storage = join(dir, 'bets.csv');
    const { proc: server, port } = await startServer({ storagePath: storage, agencies: 1 });
    const client = startClient({ port, id: 1, dataFile: file });
    expect(await client.waitExit()).toEqual({ code: 0, signal: null });
    server.signal('SIGTERM');
    expect(await server.waitExit()).toEqual({ code: 0, signal: null });

    expect(failures(server)).toEqual([]);
    expect(await countStoredRows(storage)).toBe(GOOD.length);
    const stored: Bet[] = [];
    for await (const b of loadBets(storage)) stored.push(b);
    expect(stored).toEqual(GOOD);

    const invalid = client.lines.filter((l) => l.includes('action: apuesta_invalida'));
    expect(invalid).toHaveLength(BAD.length);
    invalid.forEach((line, i) => {
      expect(line).toContain(`action: apuesta_invalida | result: fail | archivo: ${file} | linea: ${BAD[i]!.line} | error: `);
      expect(line.slice(line.indexOf('| error: '))).toMatch(BAD[i]!.error);
    });
    // Bad rows are the only failures the client reports; the run itself succeeds.
    expect(client.log.filter((l) => l.result === 'fail').every((l) => l.action === 'apuesta_invalida')).toBe(true);
    expect(client.log.find((l) => l.action === 'consulta_ganadores')?.fields.cant_ganadores).toBe('1');
    expect(client.log.at(-1)).toMatchObject({
      action: 'exit',
      result: 'success',
      fields: { filas_invalidas: String(BAD.length), enviadas: String(GOOD.length) },
    });
  });

  it('refuses a missing data file before connecting: exit 2, one config fail line naming the path', async () => {
    const missing = join(dir, 'no-such-agency.csv');
    const client = startClient({ port: 1, id: 1, dataFile: missing });
    expect(await client.waitExit()).toEqual({ code: EXIT_CONFIG, signal: null });
    expect(client.indexOf('connect'), client.text).toBe(-1);
    const refused = client.log.filter((l) => l.action === 'config' && l.result === 'fail');
    expect(refused.map((l) => l.fields.error)).toEqual([
      expect.stringMatching(/^CLI_DATA_FILE - cannot read the data file .*no-such-agency\.csv \(ENOENT\)/),
    ]);
  });

  it('refuses a directory as data file before saying HELLO to a server that is up', async () => {
    // A server that accepts and never answers: a client that connected would wait for WELCOME until its connect timeout.
    const sockets = new Set<Socket>();
    const server = createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const client = startClient({ port, id: 1, dataFile: dir, env: { CLI_SERVER_CONNECTTIMEOUT: '2s' } });
      expect(await client.waitExit()).toEqual({ code: EXIT_CONFIG, signal: null });
      const error = client.log.find((l) => l.action === 'config' && l.result === 'fail')?.fields.error;
      expect(error, client.text).toContain(`cannot read the data file ${dir} (it is a directory, not a file)`);
      expect(sockets.size).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
