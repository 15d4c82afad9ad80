/**
 * FINISHED and the draw, as statements run inside a transaction (transient.ts).
 *
 * FINISHED: the agency's row is locked first (so a batch of the agency in flight commits
 * before, and is refused after), then a row goes into `finished` (its primary key makes a
 * repeat count once). The count is READ, never incremented, in the same transaction. The last
 * two agencies finishing at once on two servers would each count without the other's
 * uncommitted row and nobody would see the set complete, so a call that inserted locks the
 * lottery row before counting: such calls run one after the other, and under READ COMMITTED
 * the count, a new statement after the lock was granted, sees every earlier one's row.
 * Exactly one call, across all servers, counts `agencies` having inserted: `completed`.
 *
 * The draw: one transaction holds the lottery row (FOR UPDATE) from the state check to the
 * COMMIT that stores the winners and the state 'done'. A second drawer, on any server, waits
 * on that lock and then finds 'done'. "Running" is the lock itself, not a committed state: if
 * the drawing server dies, PostgreSQL aborts its transaction and frees the row, and the next
 * drawer finds 'pending' and draws; a committed 'running' would need a lease to be taken over.
 * The winners' primary key is a second guard: two draws could not both insert them.
 */
import type pg from 'pg';
import { WINNING_NUMBER } from '../../../shared/domain/bet.js';
import { DrawTooEarlyError, UnknownAgencyError, type FinishMark, type Progress } from '../backend.js';

export const DrawEvent = { ALL_FINISHED: 'all_finished', DONE: 'done' } as const;

export async function markFinished(client: pg.ClientBase, agency: number, epoch: number, channel: string): Promise<FinishMark> {
  const owner = await client.query<{ epoch: string }>('SELECT epoch FROM agencies WHERE agency = $1 FOR UPDATE', [agency]);
  const row = owner.rows[0];
  if (row === undefined) throw new UnknownAgencyError(agency, await agencyCount(client));
  if (Number(row.epoch) !== epoch) return { replaced: true };
  const inserted = await client.query('INSERT INTO finished (agency) VALUES ($1) ON CONFLICT DO NOTHING', [agency]);
  const counted = inserted.rowCount === 1;
  if (counted) await client.query('SELECT 1 FROM lottery FOR UPDATE');
  const { finished, expected } = await counts(client);
  const completed = counted && finished === expected;
  if (completed) await client.query('SELECT pg_notify($1, $2)', [channel, DrawEvent.ALL_FINISHED]);
  return { replaced: false, counted, finished, expected, allFinished: finished === expected, completed };
}

async function agencyCount(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ agencies: number }>('SELECT agencies FROM lottery');
  return rows[0]?.agencies ?? 0;
}

async function counts(client: pg.ClientBase): Promise<{ finished: number; expected: number; state: string }> {
  const { rows } = await client.query<{ finished: number; expected: number; state: string }>(
    'SELECT (SELECT count(*) FROM finished)::int AS finished, agencies AS expected, state FROM lottery',
  );
  return rows[0]!;
}

export async function readProgress(client: pg.ClientBase): Promise<Progress> {
  const { finished, expected, state } = await counts(client);
  return { finished, expected, drawn: state === 'done' };
}

export interface DrawRow {
  readonly bets: number;
  readonly winners: number;
  readonly drawnBy: string;
  /** True when this transaction ran the draw (false: it found it done). */
  readonly ranNow: boolean;
}

/**
 * Runs the draw in the caller's transaction unless it is done; waits while another transaction
 * draws. `token` names the caller's draw() call and is kept the same across its retries: a
 * retry after a COMMIT whose answer was lost finds the draw done by its own token (ranNow).
 */
export async function drawOnce(client: pg.ClientBase, server: string, channel: string, token: string): Promise<DrawRow> {
  const locked = await client.query<{
    state: string;
    drawn_by: string | null;
    bets: string | null;
    winners: number | null;
    draw_token: string | null;
  }>('SELECT state, drawn_by, bets, winners, draw_token FROM lottery FOR UPDATE');
  const row = locked.rows[0]!;
  if (row.state === 'done')
    return { bets: Number(row.bets), winners: row.winners ?? 0, drawnBy: row.drawn_by ?? '', ranNow: row.draw_token === token };
  const { finished, expected } = await counts(client);
  if (finished < expected) throw new DrawTooEarlyError(finished, expected);
  const picked = await client.query(
    'INSERT INTO winners (agency, seq, document) SELECT agency, seq, document FROM bets WHERE number = $1',
    [WINNING_NUMBER],
  );
  const total = await client.query<{ bets: string }>('SELECT coalesce(sum(stored), 0) AS bets FROM batches');
  const bets = Number(total.rows[0]!.bets);
  const winners = picked.rowCount ?? 0;
  await client.query(`UPDATE lottery SET state = 'done', drawn_by = $1, drawn_at = now(), bets = $2, winners = $3, draw_token = $4`, [
    server,
    bets,
    winners,
    token,
  ]);
  await client.query('SELECT pg_notify($1, $2)', [channel, DrawEvent.DONE]);
  return { bets, winners, drawnBy: server, ranNow: true };
}

/** Every agency's winning documents in stream order, once the draw is done; null before. */
export async function loadWinners(client: pg.ClientBase | pg.Pool): Promise<Map<number, string[]> | null> {
  const state = await client.query<{ state: string }>('SELECT state FROM lottery');
  if (state.rows[0]?.state !== 'done') return null;
  const { rows } = await client.query<{ agency: number; document: string }>('SELECT agency, document FROM winners ORDER BY agency, seq');
  const winners = new Map<number, string[]>();
  for (const r of rows) {
    const list = winners.get(r.agency);
    if (list === undefined) winners.set(r.agency, [r.document]);
    else list.push(r.document);
  }
  return winners;
}
