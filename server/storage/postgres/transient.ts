/**
 * Which database errors are worth a retry, and the one way this backend runs a transaction:
 * on a pooled client, retried as a whole on a transient error within a time budget. Every
 * transaction here is safe to run again after an unknown outcome (a COMMIT cut off by a
 * restart): admission answers DUPLICATE for what committed, FINISHED and claims are
 * idempotent or fenced by epochs, and the draw checks its state row under lock.
 */
import type pg from 'pg';
import { retryWithBackoff } from '../../../shared/util/async.js';
import { StartStoppedError, StorageUnavailableError } from '../backend.js';

/**
 * SQLSTATEs that say "try again": the server shutting down or starting (57P01-57P03), too
 * many connections (53300), serialization failure and deadlock (40001, 40P01), and a
 * unique violation (23505), which here can only mean that another transaction recorded the
 * same key first; the retry then sees it (DUPLICATE). Class 08 is a lost connection.
 */
const RETRY_CODES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01', '23505']);
const NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTCONN', 'EHOSTUNREACH']);
const MESSAGES = /Connection terminated|not queryable|timeout exceeded when trying to connect|Connection ended|Client was closed/i;

export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (RETRY_CODES.has(code) || code.startsWith('08') || NODE_CODES.has(code))) return true;
  return MESSAGES.test(err.message);
}

export interface RetryPolicy {
  /** Total time to keep retrying a transient failure; 0 makes one attempt. */
  readonly retryMs: number;
  readonly signal?: AbortSignal;
  readonly onRetry?: (err: Error, attempt: number) => void;
}

/**
 * Checks a client out of `pool` with `onError` attached in the pool's own callback. The pool
 * takes its listener off as it hands a client over; a new connection is handed over while
 * its first read is parsed, and an ErrorResponse in that same read (a server shutting down
 * right after accepting it) would find no listener if we attached ours after an await.
 */
function checkOut(pool: pg.Pool, onError: (err: Error) => void): Promise<pg.PoolClient> {
  return new Promise((resolve, reject) => {
    pool.connect((err, client) => {
      if (err !== undefined || client === undefined) return reject(err ?? new Error('the pool handed over no client'));
      client.on('error', onError);
      resolve(client);
    });
  });
}

/**
 * Runs `fn` on a client of `pool`. A checked-out client has no 'error' listener of the
 * pool's, so a connection lost between two statements would be an uncaught exception: one is
 * attached while we hold it. A client that failed transiently may hold a dead socket: it is
 * destroyed, never reused.
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let failure: unknown;
  const onError = (err: Error): void => {
    failure ??= err;
  };
  const client = await checkOut(pool, onError);
  try {
    return await fn(client);
  } catch (err) {
    failure ??= err;
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(failure !== undefined && isTransient(failure) ? (failure as Error) : undefined);
  }
}

/**
 * Runs `body` between BEGIN and COMMIT on a client of `pool`; a failure rolls back. A
 * transient one is retried from BEGIN until `retryMs` runs out, then surfaces as
 * StorageUnavailableError.
 */
export function transaction<T>(pool: pg.Pool, what: string, policy: RetryPolicy, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const attempt = (): Promise<T> =>
    withClient(pool, async (client) => {
      try {
        // Explicit: the reasoning in store.ts and draw.ts is READ COMMITTED's, whatever the server's default.
        await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
        const result = await body(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  return withRetry(what, policy, attempt);
}

/**
 * What open() throws for `err` once `stop` may have aborted it: a wait for the database that
 * the stop cut short (between attempts, or after an attempt that found it unreachable) is
 * StartStoppedError, no failure; anything else (another lottery's schema, a failed migration)
 * stays as it is, stop or not.
 */
export function stopped(err: unknown, stop: AbortSignal | undefined): unknown {
  const error = err as Error;
  const waiting = error.name === 'AbortError' || error instanceof StorageUnavailableError || isTransient(error);
  if (stop?.aborted !== true || !waiting) return err;
  const last = error.name === 'AbortError' ? '' : ` (its last answer: ${error.message})`;
  return new StartStoppedError(`stopped while waiting for the database${last}`, { cause: err });
}

/** `attempt` retried on transient errors within the policy; the last transient error becomes StorageUnavailableError. */
export async function withRetry<T>(what: string, policy: RetryPolicy, attempt: () => Promise<T>): Promise<T> {
  try {
    return await retryWithBackoff(attempt, {
      initialMs: 25,
      maxMs: 1_000,
      timeoutMs: policy.retryMs,
      signal: policy.signal,
      retryable: isTransient,
      onRetry: policy.onRetry,
    });
  } catch (err) {
    if (isTransient(err)) {
      throw new StorageUnavailableError(`${what} failed: the database is unreachable (${(err as Error).message}); retry: it is safe`, {
        cause: err,
      });
    }
    throw err;
  }
}
