/**
 * One group commit: the runs of several sessions (several agencies) admitted and written in
 * ONE transaction, whose outcomes the caller may acknowledge only after it returns (COMMIT).
 *
 * Concurrency control, all of it PostgreSQL's:
 * 1. `SELECT ... FOR UPDATE` on the agencies' rows, in agency order (two groups sharing
 *    agencies lock them in the same order: no deadlock). From here to COMMIT no other
 *    transaction, on any server, can admit a batch of these agencies, record their FINISHED
 *    or claim them: all of those take the same row lock first.
 * 2. `finished` is read by a second statement: under READ COMMITTED it takes a new snapshot,
 *    after the locks were granted, so it sees a FINISHED committed while we waited (a join in
 *    the locking statement would not: rows it did not lock keep the statement's old snapshot).
 * 3. The admission rule (admission.ts) runs on what was read; its records (batches rows, the
 *    bets by COPY, the new `next`) are written before COMMIT. The batches primary key
 *    (agency, first) is the last line: a transaction that ever recorded a key twice would fail
 *    whole (nothing of it stays) and its retry would answer DUPLICATE.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { UnknownAgencyError, type BatchOutcome } from '../backend.js';
import { admitRun, type AgencyState, type BatchWrite, type DecodedRun } from './admission.js';
import { COPY_IN_COLUMNS, encodeBetRows } from './copy-text.js';

/** COPY data goes out in pieces of about this size, so a large group is not one huge string. */
const COPY_CHUNK = 1 << 18;

export async function storeGroup(client: pg.ClientBase, runs: readonly DecodedRun[], agencies: number): Promise<BatchOutcome[][]> {
  const ids = [...new Set(runs.map((r) => r.agency))].sort((a, b) => a - b);
  for (const id of ids) if (!Number.isInteger(id) || id < 1 || id > agencies) throw new UnknownAgencyError(id, agencies);
  const states = await lockAgencies(client, ids);
  const writes: BatchWrite[] = [];
  const outcomes = runs.map((run) => admitRun(run, states.get(run.agency)!, writes));
  if (writes.length > 0) {
    await recordBatches(client, writes, states);
    await copyBets(client, writes);
  }
  return outcomes;
}

async function lockAgencies(client: pg.ClientBase, ids: number[]): Promise<Map<number, AgencyState>> {
  const locked = await client.query<{ agency: number; next: string; epoch: string }>(
    'SELECT agency, next, epoch FROM agencies WHERE agency = ANY($1::int[]) ORDER BY agency FOR UPDATE',
    [ids],
  );
  const finished = await client.query<{ agency: number }>('SELECT agency FROM finished WHERE agency = ANY($1::int[])', [ids]);
  const done = new Set(finished.rows.map((r) => r.agency));
  const states = new Map<number, AgencyState>();
  for (const r of locked.rows) states.set(r.agency, { next: Number(r.next), epoch: Number(r.epoch), finished: done.has(r.agency) });
  // Rows are created at start for 1..agencies; one missing means the database was altered.
  for (const id of ids) if (!states.has(id)) throw new Error(`agency ${id} has no row in agencies: the database was changed by hand`);
  return states;
}

/** The idempotency records and the new positions, in one statement. */
async function recordBatches(client: pg.ClientBase, writes: readonly BatchWrite[], states: Map<number, AgencyState>): Promise<void> {
  const moved = [...new Set(writes.map((w) => w.agency))];
  await client.query(
    `WITH recorded AS (
       INSERT INTO batches (agency, first, count, stored)
       SELECT * FROM unnest($1::int[], $2::bigint[], $3::int[], $4::int[])
     )
     UPDATE agencies a SET next = v.next FROM unnest($5::int[], $6::bigint[]) AS v(agency, next) WHERE a.agency = v.agency`,
    [
      writes.map((w) => w.agency),
      writes.map((w) => w.first),
      writes.map((w) => w.count),
      writes.map((w) => w.bets.length),
      moved,
      moved.map((a) => states.get(a)!.next),
    ],
  );
}

async function copyBets(client: pg.ClientBase, writes: readonly BatchWrite[]): Promise<void> {
  if (!writes.some((w) => w.bets.length > 0)) return;
  function* chunks(): Generator<Buffer> {
    let text = '';
    for (const w of writes) {
      text += encodeBetRows(w.agency, w.first, w.bets);
      if (text.length >= COPY_CHUNK) {
        yield Buffer.from(text, 'utf8');
        text = '';
      }
    }
    if (text !== '') yield Buffer.from(text, 'utf8');
  }
  await pipeline(Readable.from(chunks(), { objectMode: false }), client.query(copyFrom(`COPY bets ${COPY_IN_COLUMNS} FROM STDIN`)));
}
