/**
 * Group commit: items submitted while earlier groups are in flight wait, and go together as
 * one group (one transaction) when a slot frees. Items of one event-loop turn always travel
 * together (the first flush waits for setImmediate), in submission order. A group is closed
 * early at `maxWeight` (bets), so one transaction stays bounded however many sessions wait.
 */
import { StorageClosedError } from '../backend.js';

interface Pending<I, O> {
  readonly item: I;
  readonly weight: number;
  resolve(value: O): void;
  reject(reason: unknown): void;
}

export interface GroupCommitOptions<I> {
  /** Groups in flight at once (each holds one database connection). */
  readonly maxInFlight: number;
  /** A group is closed once its items weigh this much (at least one item always goes). */
  readonly maxWeight: number;
  readonly weigh: (item: I) => number;
}

export class GroupCommit<I, O> {
  readonly #commit: (items: I[]) => Promise<O[]>;
  readonly #opts: GroupCommitOptions<I>;
  #queue: Pending<I, O>[] = [];
  #inFlight = 0;
  #scheduled = false;
  #closed = false;
  readonly #idle = new Set<() => void>();

  /** `commit` gets a group and returns one output per item, in order; if it throws, every item of the group fails. */
  constructor(commit: (items: I[]) => Promise<O[]>, opts: GroupCommitOptions<I>) {
    this.#commit = commit;
    this.#opts = opts;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  submit(item: I): Promise<O> {
    if (this.#closed) return Promise.reject(new StorageClosedError('storing a batch'));
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, weight: this.#opts.weigh(item), resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          this.#pump();
        });
      }
    });
  }

  /** Refuses new items; resolves once the groups in flight and the queued ones have settled. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#inFlight === 0 && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => this.#idle.add(resolve));
  }

  #pump(): void {
    while (this.#inFlight < this.#opts.maxInFlight && this.#queue.length > 0) {
      const group = this.#take();
      this.#inFlight++;
      void this.#run(group);
    }
    if (this.#inFlight === 0 && this.#queue.length === 0) {
      for (const done of this.#idle) done();
      this.#idle.clear();
    }
  }

  #take(): Pending<I, O>[] {
    let weight = 0;
    let n = 0;
    while (n < this.#queue.length && (n === 0 || weight + this.#queue[n]!.weight <= this.#opts.maxWeight))
      weight += this.#queue[n++]!.weight;
    return this.#queue.splice(0, n);
  }

  async #run(group: Pending<I, O>[]): Promise<void> {
    try {
      const outputs = await this.#commit(group.map((p) => p.item));
      if (outputs.length !== group.length) throw new Error(`group commit returned ${outputs.length} results for ${group.length} items`);
      for (const [i, p] of group.entries()) p.resolve(outputs[i]!);
    } catch (err) {
      for (const p of group) p.reject(err);
    } finally {
      this.#inFlight--;
      this.#pump();
    }
  }
}
