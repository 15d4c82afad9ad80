/**
 * `make run`'s progress: bets stored (acknowledged to the client) out of the bets in each
 * agency's file. On a terminal, one line per agency redrawn in place a few times a second;
 * elsewhere (a pipe, CI, a file) plain lines: one per agency when its client ends.
 */
const REDRAW_MS = 150;
const BAR = 24;

interface Row {
  stored: number;
  total: number;
  state: string;
}

export class Progress {
  readonly #rows: Row[];
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  #drawn = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(totals: number[], out: NodeJS.WriteStream = process.stdout) {
    this.#rows = totals.map((total) => ({ stored: 0, total, state: 'sending' }));
    this.#out = out;
    this.#tty = out.isTTY === true;
    if (this.#tty) {
      this.#draw();
      this.#timer = setInterval(() => this.#draw(), REDRAW_MS);
      this.#timer.unref();
    }
  }

  get tty(): boolean {
    return this.#tty;
  }

  /** `n` more bets of agency `agency` (1-based) were acknowledged. */
  stored(agency: number, n: number): void {
    const row = this.#rows[agency - 1];
    if (row !== undefined) row.stored += n;
  }

  /** The agency's client ended with `state` (e.g. `exit 0`); a plain line off a terminal. */
  ended(agency: number, state: string): void {
    const row = this.#rows[agency - 1];
    if (row === undefined) return;
    row.state = state;
    if (!this.#tty) this.#out.write(`${this.#line(agency, row)}\n`);
  }

  /** Above the progress block on a terminal (it is redrawn below), a plain line elsewhere. */
  note(text: string): void {
    if (!this.#tty) {
      this.#out.write(`${text}\n`);
      return;
    }
    this.#clear();
    this.#out.write(`${text}\n`);
    this.#drawn = 0;
    this.#draw();
  }

  /** Last drawing; the block stays on screen. Idempotent. */
  close(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    this.#draw();
  }

  #line(agency: number, row: Row): string {
    const pct = row.total === 0 ? 100 : Math.min(100, Math.floor((row.stored * 100) / row.total));
    const filled = Math.round((pct * BAR) / 100);
    const bar = `[${'#'.repeat(filled)}${' '.repeat(BAR - filled)}]`;
    return `agency ${String(agency).padStart(3)} ${bar} ${String(row.stored).padStart(8)} / ${row.total} bets stored  ${row.state}`;
  }

  #clear(): void {
    if (this.#drawn > 0) this.#out.write(`\x1b[${this.#drawn}A`);
    for (let i = 0; i < this.#drawn; i++) this.#out.write('\x1b[2K\n');
    if (this.#drawn > 0) this.#out.write(`\x1b[${this.#drawn}A`);
  }

  #draw(): void {
    if (this.#drawn > 0) this.#out.write(`\x1b[${this.#drawn}A`);
    const text = this.#rows.map((row, i) => `\x1b[2K${this.#line(i + 1, row)}\n`).join('');
    this.#out.write(text);
    this.#drawn = this.#rows.length;
  }
}
