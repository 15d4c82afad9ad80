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

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
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
  const parts = [`action: ${clean(o.action ?? 'log')}`, `result: ${clean(o.result ?? 'success')}`];
  for (const [k, v] of Object.entries(o)) {
    if (!HIDDEN.has(k) && v !== undefined) parts.push(`${k}: ${clean(v)}`);
  }
  if (typeof o.msg === 'string' && o.msg !== '') parts.push(`msg: ${clean(o.msg)}`);
  const time = new Date(typeof o.time === 'number' ? o.time : Date.now()).toISOString();
  const level = (LEVEL_NAMES[o.level as number] ?? 'INFO').padEnd(5);
  return `${time} ${level} ${parts.join(' | ')}\n`;
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
  const stream: DestinationStream =
    format === LogFormat.JSON ? { write: (line: string) => out.write(line) } : { write: (line: string) => out.write(formatLine(line)) };
  return pino({ level, base: undefined }, stream);
}
