/**
 * Who may hold a connection. A connection that has not proved an agency's key is
 * "unauthenticated" and lives in its own budget, capped in all and per source, and it can
 * only stay there until the auth deadline; authenticated connections have a separate budget
 * that no unauthenticated peer can touch. So a flood of connections that never prove
 * anything costs the real agencies nothing but the auth deadline at worst, and nothing at all
 * when it comes from other sources.
 *
 * The acceptor asks `admit(source)` for each new connection: a Ticket, or a Refusal whose
 * `retryMs` says when a slot is expected to free (the oldest unauthenticated connection in
 * the way reaches its deadline by then). The session calls `ticket.promote()` once the proof
 * is valid and `ticket.release()` when the connection closes (idempotent).
 */
export interface BudgetLimits {
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerSource: number;
  readonly maxAuthenticated: number;
  /** The unauthenticated deadline: an unauthenticated slot is free again at most this long after its admission. */
  readonly authTimeoutMs: number;
}

export interface Refusal {
  readonly retryMs: number;
  /** For the ERROR BUSY text and the log: which budget is full. */
  readonly reason: string;
}

export type Admission = { readonly ok: true; readonly ticket: Ticket } | ({ readonly ok: false } & Refusal);

export const TicketState = { UNAUTHENTICATED: 'unauthenticated', AUTHENTICATED: 'authenticated', RELEASED: 'released' } as const;
export type TicketState = (typeof TicketState)[keyof typeof TicketState];

/** The smallest retry hint: a client should not come back sooner. */
const MIN_RETRY_MS = 100;
/** The hint when the authenticated budget is full: slots there free when replaced sessions drain. */
const AUTHENTICATED_RETRY_MS = 1000;

export class Ticket {
  readonly source: string;
  readonly admittedAt: number;
  #state: TicketState = TicketState.UNAUTHENTICATED;
  readonly #budget: ConnectionBudget;

  /** @internal Only ConnectionBudget.admit makes tickets. */
  constructor(budget: ConnectionBudget, source: string, admittedAt: number) {
    this.#budget = budget;
    this.source = source;
    this.admittedAt = admittedAt;
  }

  get state(): TicketState {
    return this.#state;
  }

  /** Moves the connection to the authenticated budget; a Refusal (and no move) when that is full. */
  promote(): Refusal | null {
    if (this.#state !== TicketState.UNAUTHENTICATED) throw new Error(`a ${this.#state} ticket cannot be promoted`);
    const refusal = this.#budget.moveToAuthenticated(this);
    if (refusal === null) this.#state = TicketState.AUTHENTICATED;
    return refusal;
  }

  /** Frees the slot; later calls do nothing. */
  release(): void {
    if (this.#state === TicketState.RELEASED) return;
    this.#budget.remove(this, this.#state);
    this.#state = TicketState.RELEASED;
  }
}

export class ConnectionBudget {
  readonly #limits: BudgetLimits;
  readonly #now: () => number;
  /** Insertion order is admission order, so the first is the oldest (the next to time out). */
  readonly #unauthenticated = new Set<Ticket>();
  readonly #bySource = new Map<string, Set<Ticket>>();
  #authenticated = 0;

  constructor(limits: BudgetLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  admit(source: string): Admission {
    const now = this.#now();
    const { maxUnauthenticated, maxUnauthenticatedPerSource } = this.#limits;
    const mine = this.#bySource.get(source);
    if (mine !== undefined && mine.size >= maxUnauthenticatedPerSource)
      return this.#refuse(
        mine,
        now,
        `${mine.size} connections from ${source} have not authenticated yet (limit ${maxUnauthenticatedPerSource} per source)`,
      );
    if (this.#unauthenticated.size >= maxUnauthenticated)
      return this.#refuse(
        this.#unauthenticated,
        now,
        `${this.#unauthenticated.size} connections have not authenticated yet (limit ${maxUnauthenticated})`,
      );
    const ticket = new Ticket(this, source, now);
    this.#unauthenticated.add(ticket);
    if (mine === undefined) this.#bySource.set(source, new Set([ticket]));
    else mine.add(ticket);
    return { ok: true, ticket };
  }

  get counts(): { unauthenticated: number; authenticated: number; sources: number } {
    return { unauthenticated: this.#unauthenticated.size, authenticated: this.#authenticated, sources: this.#bySource.size };
  }

  /** @internal For Ticket.promote. */
  moveToAuthenticated(ticket: Ticket): Refusal | null {
    if (this.#authenticated >= this.#limits.maxAuthenticated)
      return {
        retryMs: AUTHENTICATED_RETRY_MS,
        reason: `${this.#authenticated} authenticated connections are open (limit ${this.#limits.maxAuthenticated})`,
      };
    this.#dropUnauthenticated(ticket);
    this.#authenticated++;
    return null;
  }

  /** @internal For Ticket.release. */
  remove(ticket: Ticket, state: TicketState): void {
    if (state === TicketState.AUTHENTICATED) this.#authenticated--;
    else if (state === TicketState.UNAUTHENTICATED) this.#dropUnauthenticated(ticket);
  }

  #dropUnauthenticated(ticket: Ticket): void {
    this.#unauthenticated.delete(ticket);
    const mine = this.#bySource.get(ticket.source);
    mine?.delete(ticket);
    if (mine?.size === 0) this.#bySource.delete(ticket.source);
  }

  #refuse(holders: Set<Ticket>, now: number, reason: string): Admission {
    const oldest = holders.values().next().value as Ticket;
    const retryMs = Math.max(MIN_RETRY_MS, Math.min(this.#limits.authTimeoutMs, oldest.admittedAt + this.#limits.authTimeoutMs - now));
    return { ok: false, retryMs, reason };
  }
}
