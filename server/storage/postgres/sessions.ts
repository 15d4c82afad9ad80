/**
 * One active session per agency across servers: a lease row with an epoch (a fencing
 * token), not a lock that waits. The takeover rule says the newest authenticated connection
 * wins, so a claim never waits for the old holder: it bumps the agency's epoch (under the
 * row lock, so it is ordered against every batch and FINISHED of the agency) and NOTIFYs it.
 * Every server hears the epoch; the one holding an older session closes it (ERROR REPLACED)
 * once its batch in flight is answered. That batch, and anything the old session still
 * sends, carries the old epoch: admission refuses it (REPLACED) and stores nothing, so a
 * server that missed the notification, or is slow, or was partitioned, cannot write for the
 * agency any more. A dead server's lease needs no expiry: the next claim simply overrides it.
 */
import type pg from 'pg';
import { UnknownAgencyError, type AgencyClaim } from '../backend.js';

export async function claimAgency(
  client: pg.ClientBase,
  agency: number,
  server: string,
  channel: string,
  agencies: number,
): Promise<AgencyClaim> {
  const bumped = await client.query<{ epoch: string; next: string }>(
    'UPDATE agencies SET epoch = epoch + 1, server = $2, claimed_at = now() WHERE agency = $1 RETURNING epoch, next',
    [agency, server],
  );
  const row = bumped.rows[0];
  if (row === undefined) throw new UnknownAgencyError(agency, agencies);
  // A new statement: sees a FINISHED committed while the UPDATE waited for the row.
  const finished = await client.query('SELECT 1 FROM finished WHERE agency = $1', [agency]);
  const epoch = Number(row.epoch);
  await client.query('SELECT pg_notify($1, $2)', [channel, encodeClaim(agency, epoch)]);
  return { agency, epoch, next: Number(row.next), finished: finished.rowCount === 1 };
}

/** Clears the lease if `epoch` still holds it (observability only: a claim never needs it cleared). */
export async function releaseAgency(client: pg.ClientBase | pg.Pool, agency: number, epoch: number): Promise<void> {
  await client.query('UPDATE agencies SET server = NULL, claimed_at = NULL WHERE agency = $1 AND epoch = $2', [agency, epoch]);
}

/** The newest epoch of each agency in `agencies` (for a resync after the listener reconnected). */
export async function currentEpochs(client: pg.ClientBase | pg.Pool, agencies: readonly number[]): Promise<Map<number, number>> {
  const { rows } = await client.query<{ agency: number; epoch: string }>(
    'SELECT agency, epoch FROM agencies WHERE agency = ANY($1::int[])',
    [agencies],
  );
  return new Map(rows.map((r) => [r.agency, Number(r.epoch)]));
}

export function encodeClaim(agency: number, epoch: number): string {
  return `${agency}:${epoch}`;
}

export function decodeClaim(payload: string): { agency: number; epoch: number } | null {
  const m = /^(\d+):(\d+)$/.exec(payload);
  return m === null ? null : { agency: Number(m[1]), epoch: Number(m[2]) };
}
