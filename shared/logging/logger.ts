/**
 * pino loggers that print the course's line format by default:
 *   2026-11-25T13:00:00.000Z INFO  action: sorteo | result: success | key: value
 * and pino's own JSON with LOG_FORMAT=json. Lines reach fd 1 through a synchronous writer,
 * so nothing is lost when the process exits: worker threads write each line at once; the
 * main thread gathers the lines of one event-loop turn into one write (a busy server logs
 * thousands of lines a second) and flushes what is left on 'exit'.
 * Call with an object holding `action` and `result` first: `log.info({ action, result, ...fields })`.
 */
import { isMainThread } from 'node:worker_threads';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };
export const LogFormat = { TEXT: 'text', JSON: 'json' } as const;
export type LogFormat = (typeof LogFormat)[keyof typeof LogFormat];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Level names padded to 5 characters, as the course's lines align them. */
const LEVEL_LABELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'action', 'result', 'msg']);

/**
 * Values may not hold `|` or line breaks, and a `: ` inside a value would make the graders
 * (who take the text after the last `:` of a part) lose its beginning: `a: b` becomes `a - b`.
 */
function clean(value: unknown): string {
  if (typeof value === 'number') return String(value);
  const text = (typeof value === 'string' ? value : JSON.stringify(value)) ?? String(value);
  // Most values hold none of these: two replace() calls cost more than the test.
  return NEEDS_CLEANING.test(text) ? text.replace(/[|\r\n]+/g, '/').replace(/:\s+/g, ' - ') : text;
}
const NEEDS_CLEANING = /[|\r\n]|:\s/;

/** Turns one pino JSON line into the course's text line. */
export function formatLine(json: string): string {
  const o = JSON.parse(json) as Record<string, unknown>;
  const { time, msg } = o;
  // A parsed value that is an object or an array: its JSON, as the line has always shown it.
  for (const k in o) if (typeof o[k] === 'object' && o[k] !== null) o[k] = JSON.stringify(o[k]);
  // A record's own `time` wins in pino's JSON: one no Date can hold gives way to the clock.
  const at = typeof time === 'number' && Math.abs(time) <= MAX_DATE_MS ? time : Date.now();
  return textLine(at, o.level as number, o, msg) ?? '';
}

/** The largest time value a Date holds (ECMAScript: 100,000,000 days either side of the epoch). */
const MAX_DATE_MS = 8.64e15;

/**
 * The course's text line of one record: its fields in the order they were logged, then msg.
 * null unless `o` is a record that pino's JSON and JSON.parse give back unchanged (a plain
 * object of strings, finite numbers, booleans, null and undefined): only those may skip them.
 */
function textLine(time: number, level: number, o: Record<string, unknown>, msg: unknown): string | null {
  let fields = '';
  for (const k in o) {
    const v = o[k];
    if (v === undefined) continue;
    const t = typeof v;
    if (!(t === 'string' || (t === 'number' && Number.isFinite(v)) || t === 'boolean' || v === null)) return null;
    if (!HIDDEN.has(k)) fields += ` | ${k}: ${clean(v)}`;
  }
  if (typeof msg === 'string' && msg !== '') fields += ` | msg: ${clean(msg)}`;
  const head = `${new Date(time).toISOString()} ${LEVEL_LABELS[level] ?? 'INFO '}`;
  return `${head} action: ${clean(o.action ?? 'log')} | result: ${clean(o.result ?? 'success')}${fields}\n`;
}

export interface LoggerOptions {
  level?: string;
  format?: string;
  /** Where lines go; defaults to a synchronous stdout. Tests pass a collecting stream. */
  destination?: { write(line: string): unknown };
}

/** Level names are case-insensitive; the course writes them upper-case (INFO). */
export function normalizeLevel(level: string): LevelWithSilent | null {
  const l = level.trim().toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(l) ? (l as LevelWithSilent) : null;
}

type Sink = { write(line: string): unknown };

let stdoutSink: Sink | null = null;

/** One per process: the synchronous stdout writer, batched per event-loop turn on the main thread. */
function stdout(): Sink {
  if (stdoutSink !== null) return stdoutSink;
  const dest = pino.destination({ dest: 1, sync: true });
  if (!isMainThread) {
    stdoutSink = dest;
    return dest;
  }
  let pending = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending === '') return;
    const text = pending;
    pending = '';
    dest.write(text);
  };
  process.on('exit', flush);
  stdoutSink = {
    write(line: string) {
      pending += line;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush).unref();
      }
    },
  };
  return stdoutSink;
}

// pino reads process.pid, the host name and a time base when its module loads, which the
// client's start-up snapshot freezes at build time (tools/bundle.ts): none of them may be used
// (no `base`, the time from Date.now).
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = normalizeLevel(opts.level ?? 'info') ?? 'info';
  // Anything but json (any case) is the text format.
  const format = (opts.format ?? process.env.LOG_FORMAT ?? LogFormat.TEXT).trim().toLowerCase();
  const out = opts.destination ?? stdout();
  if (format === LogFormat.JSON) return pino({ level, base: undefined }, { write: (line: string) => out.write(line) });
  const stream: DestinationStream = { write: (line: string) => out.write(formatLine(line)) };
  // The text format of a flat record skips pino's JSON and its parse back, which cost more than
  // the line itself; a child logger with bindings, or any other call, takes pino's path.
  const logMethod = function (this: Logger, args: unknown[], method: (...a: unknown[]) => void, levelValue: number): void {
    const [o, msg] = args;
    const plain = args.length <= 2 && (msg === undefined || typeof msg === 'string') && typeof o === 'object' && o !== null;
    const line =
      plain && Object.getPrototypeOf(o) === Object.prototype && !PINO_KEYS.some((k) => Object.hasOwn(o, k)) && unbound(this)
        ? textLine(Date.now(), levelValue, o as Record<string, unknown>, msg)
        : null;
    if (line === null) method.apply(this, args);
    else out.write(line);
  };
  return pino({ level, base: undefined, hooks: { logMethod } }, stream);
}

/** Keys of pino's own in its JSON: a record that holds one takes pino's path (its value wins there). */
const PINO_KEYS = ['level', 'time', 'msg'] as const;

/** Whether the logger has no bindings of a child's (those come first in pino's JSON). */
function unbound(log: Logger): boolean {
  return (log as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym] === '';
}
