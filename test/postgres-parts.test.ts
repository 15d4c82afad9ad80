/**
 * The PostgreSQL backend's parts that need no database: the group-commit queue, the COPY text
 * format, and a pooled client's error listener against a server that ends the connection in
 * the read that accepts it (a fake one on 127.0.0.1: a real PostgreSQL cannot be made to send
 * both in one read on demand). And what open() throws once a stop may have cut its wait short.
 */
import { createServer, type Server } from 'node:net';
import fc from 'fast-check';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { deferred, type Deferred } from '../shared/util/async.js';
import { StartStoppedError, StorageClosedError, StorageConfigError, StorageUnavailableError } from '../server/storage/backend.js';
import { CopyRowError, escapeCopyText, parseExportLine, unescapeCopyText } from '../server/storage/postgres/copy-text.js';
import { GroupCommit } from '../server/storage/postgres/group-commit.js';
import { stopped, withClient } from '../server/storage/postgres/transient.js';

/** A commit function whose groups the test sees and settles by hand. */
function manualCommit(): { groups: string[][]; pending: Array<Deferred<void>>; commit: (items: string[]) => Promise<string[]> } {
  const groups: string[][] = [];
  const pending: Array<Deferred<void>> = [];
  return {
    groups,
    pending,
    commit: async (items) => {
      groups.push(items);
      const gate = deferred();
      pending.push(gate);
      await gate.promise;
      return items.map((i) => i.toUpperCase());
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('GroupCommit', () => {
  it('sends the items of one turn as one group and answers each with its own output', async () => {
    const m = manualCommit();
    const gc = new GroupCommit(m.commit, { maxInFlight: 2, maxWeight: 100, weigh: () => 1 });
    const answers = ['a', 'b', 'c'].map((x) => gc.submit(x));
    await tick();
    expect(m.groups).toEqual([['a', 'b', 'c']]);
    m.pending[0]!.resolve();
    expect(await Promise.all(answers)).toEqual(['A', 'B', 'C']);
  });

  it('items arriving while the slots are busy wait and then go together, in order', async () => {
    const m = manualCommit();
    const gc = new GroupCommit(m.commit, { maxInFlight: 1, maxWeight: 100, weigh: () => 1 });
    const first = gc.submit('a');
    await tick();
    const later = [gc.submit('b')];
    await tick();
    later.push(gc.submit('c'), gc.submit('d'));
    await tick();
    expect(m.groups).toEqual([['a']]);
    expect(gc.inFlight).toBe(1);
    m.pending[0]!.resolve();
    expect(await first).toBe('A');
    await tick();
    expect(m.groups).toEqual([['a'], ['b', 'c', 'd']]);
    m.pending[1]!.resolve();
    expect(await Promise.all(later)).toEqual(['B', 'C', 'D']);
  });

  it('closes a group at maxWeight (an item heavier than that still goes alone) and runs maxInFlight groups at once', async () => {
    const m = manualCommit();
    const gc = new GroupCommit(m.commit, { maxInFlight: 2, maxWeight: 5, weigh: (x: string) => x.length });
    const all = ['aaa', 'bb', 'cc', 'dddddddd', 'e'].map((x) => gc.submit(x));
    await tick();
    expect(m.groups).toEqual([['aaa', 'bb'], ['cc']]);
    m.pending[1]!.resolve();
    await tick();
    expect(m.groups).toEqual([['aaa', 'bb'], ['cc'], ['dddddddd']]);
    m.pending[0]!.resolve();
    m.pending[2]!.resolve();
    await tick();
    expect(m.groups.at(-1)).toEqual(['e']);
    m.pending[3]!.resolve();
    expect(await Promise.all(all)).toEqual(['AAA', 'BB', 'CC', 'DDDDDDDD', 'E']);
  });

  it('a failed commit fails only its own group; close refuses new items and waits for the rest', async () => {
    let calls = 0;
    const gate = deferred();
    const gc = new GroupCommit<string, string>(
      async (items) => {
        if (++calls === 1) throw new Error('database gone');
        await gate.promise;
        return items;
      },
      { maxInFlight: 1, maxWeight: 100, weigh: () => 1 },
    );
    const failed = gc.submit('a').catch((e: Error) => e.message);
    await tick();
    const second = gc.submit('b');
    expect(await failed).toBe('database gone');
    await tick();
    let closed = false;
    const closing = gc.close().then(() => {
      closed = true;
    });
    await expect(gc.submit('c')).rejects.toThrow(StorageClosedError);
    await tick();
    expect(closed).toBe(false);
    gate.resolve();
    expect(await second).toBe('b');
    await closing;
    expect(closed).toBe(true);
  });
});

describe('COPY text format', () => {
  it('escapes and unescapes any text to itself, with no raw tab, LF or CR left', () => {
    fc.assert(
      // Backslashes next to digits, x and letters that are escapes themselves: where a decoder would go wrong.
      fc.property(
        fc.string({ unit: fc.constantFrom('\\', '\t', '\n', '\r', '\b', 'x', 'N', 'n', 't', '0', '1', '7', 'A', 'ñ', '€', ' ') }),
        (s) => {
          const escaped = escapeCopyText(s);
          expect(/[\t\n\r]/.test(escaped)).toBe(false);
          expect(unescapeCopyText(escaped)).toBe(s);
        },
      ),
    );
  });

  it("reads COPY's other escapes and refuses rows that are not a bet's six fields", () => {
    expect(unescapeCopyText('a\\101\\x42\\b\\f\\v\\\\')).toBe('aAB\b\f\v\\');
    expect(parseExportLine('7\tAna\tP\\\\z\t0042\t0099-01-01\t0', 1)).toEqual({
      agency: 7,
      firstName: 'Ana',
      lastName: 'P\\z',
      document: '0042',
      birthdate: '0099-01-01',
      number: 0,
    });
    expect(() => parseExportLine('7\tAna\tP', 3)).toThrow(new CopyRowError(3, 'expected 6 tab-separated fields, found 3'));
    expect(() => parseExportLine('7\t\\N\tP\t1\t2000-01-01\t5', 4)).toThrow(/row 4: a NULL field/);
  });
});

/** A backend message: its type byte, then its length (itself included) and body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/**
 * A server that accepts any startup (AuthenticationOk, ReadyForQuery) and, in the same write,
 * ends the session as `pg_ctl stop -m fast` does (FATAL 57P01).
 */
function shuttingDownServer(): Promise<Server> {
  const fatal = Buffer.from('SFATAL\0C57P01\0Mterminating connection due to administrator command\0\0', 'latin1');
  const reply = Buffer.concat([message('R', Buffer.from([0, 0, 0, 0])), message('Z', Buffer.from('I')), message('E', fatal)]);
  const server = createServer((socket) => {
    socket.once('data', () => socket.end(reply));
    socket.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('withClient', () => {
  it('holds a listener on a new client from the moment the pool hands it over: an ErrorResponse in the read that accepted it fails the call, not the process', async () => {
    const server = await shuttingDownServer();
    const { port } = server.address() as { port: number };
    const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'u', database: 'd', max: 1 });
    const lost: Error[] = [];
    pool.on('error', (err) => lost.push(err));
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    try {
      await expect(withClient(pool, (client) => client.query('SELECT 1'))).rejects.toThrow(/terminat|Connection/i);
      await new Promise((r) => setTimeout(r, 50));
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await pool.end().catch(() => {});
      await new Promise((r) => server.close(r));
    }
  });
});

describe('stopped: what open() throws once the server may be stopping', () => {
  const aborted = (): AbortSignal => AbortSignal.abort();
  const abortError = (): Error => Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
  const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });

  it('a wait for the database that the stop cut short is StartStoppedError, naming the last answer when there was one', () => {
    const cut = stopped(abortError(), aborted());
    expect(cut).toBeInstanceOf(StartStoppedError);
    expect((cut as Error).message).toBe('stopped while waiting for the database');
    const gone = stopped(new StorageUnavailableError('opening the database failed: unreachable'), aborted());
    expect((gone as Error).message).toBe(
      'stopped while waiting for the database (its last answer: opening the database failed: unreachable)',
    );
    expect(stopped(refused(), aborted())).toBeInstanceOf(StartStoppedError);
  });

  it('any other error stays as it is, stop or not; and nothing changes without a stop', () => {
    const config = new StorageConfigError('the database holds another lottery');
    expect(stopped(config, aborted())).toBe(config);
    const bug = new TypeError('x is undefined');
    expect(stopped(bug, aborted())).toBe(bug);
    const gone = new StorageUnavailableError('unreachable');
    expect(stopped(gone, undefined)).toBe(gone);
    expect(stopped(gone, new AbortController().signal)).toBe(gone);
  });
});
