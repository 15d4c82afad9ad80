/** A logger for in-process tests: pino's JSON lines kept as objects, and a wait for the first line that matches. */
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import { deferred, withDeadline, type Deferred } from '../../shared/util/async.js';

export type Entry = Record<string, unknown> & { action?: string; result?: string };

export class LogTap {
  readonly entries: Entry[] = [];
  readonly log: Logger;
  /** Called synchronously as each line is logged, for tests that sample state at that moment. */
  onEntry: (e: Entry) => void = () => {};
  readonly #waiters: Array<{ match: (e: Entry) => boolean; done: Deferred<Entry> }> = [];

  constructor(level = 'debug') {
    this.log = createLogger({ level, format: 'json', destination: { write: (line: string) => this.#add(JSON.parse(line) as Entry) } });
  }

  #add(e: Entry): void {
    this.entries.push(e);
    this.onEntry(e);
    for (const w of [...this.#waiters]) {
      if (!w.match(e)) continue;
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.done.resolve(e);
    }
  }

  /** The first line (already logged or to come) that `match` accepts; fails after `ms` with what was logged. */
  waitFor(match: (e: Entry) => boolean, ms = 10_000): Promise<Entry> {
    const seen = this.entries.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    const done = deferred<Entry>();
    this.#waiters.push({ match, done });
    return withDeadline(done.promise, ms, () => new Error(`no such log line within ${ms} ms; logged:\n${this.text()}`));
  }

  /** Lines with this action (and result, when given). */
  find(action: string, result?: string): Entry[] {
    return this.entries.filter((e) => e.action === action && (result === undefined || e.result === result));
  }

  indexOf(action: string): number {
    return this.entries.findIndex((e) => e.action === action);
  }

  text(): string {
    return this.entries.map((e) => JSON.stringify(e)).join('\n');
  }
}
