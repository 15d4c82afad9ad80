/**
 * Turns raw log text into entries: the text lines (`<ISO time> <LEVEL> action: x | result: y | key: value`)
 * or pino's JSON lines (LOG_FORMAT=json), each optionally behind Compose's `name | ` prefix and
 * ANSI colours. Keys are read up to the first `: ` of a part (the logger writes a `: ` inside a
 * value as ` - `), so a value holding `:` (an address, a time) stays whole. Unknown keys are
 * kept as they are: fields added later never break the reading.
 */

export interface Entry {
  /** Position in the input: the order of lines within one process. */
  index: number;
  /** The process: Compose's prefix, else the file's name, else `stdin`. */
  source: string;
  /** Epoch ms from the line's own timestamp; null when it has none. */
  time: number | null;
  level: string;
  action: string;
  result: string;
  fields: Record<string, string>;
  /** The line without prefix and colours, for evidence. */
  text: string;
}

/** A line that is no log event (a stack trace, npm's chatter): kept as evidence of a crash. */
export interface OtherLine {
  index: number;
  source: string;
  text: string;
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
/** `name  | rest`: a name has no spaces or colons, which tells it from a text line's first part. */
const PREFIX = /^([A-Za-z0-9][\w.-]*)\s*\|\s?(.*)$/;
const ISO_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z/;
const LEVEL = /\b(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\b/;
const PINO_LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const JSON_HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'action', 'result', 'msg']);

type Parsed = Omit<Entry, 'index' | 'source' | 'text'>;

function parseText(text: string): Parsed | null {
  const at = text.indexOf('action:');
  if (at < 0) return null;
  const head = text.slice(0, at);
  const fields: Record<string, string> = {};
  for (const part of text.slice(at).split(' | ')) {
    const m = /^\s*([\w.-]+):(?: (.*))?$/s.exec(part);
    if (m === null) continue;
    fields[m[1] ?? ''] = (m[2] ?? '').trim();
  }
  const { action, result } = fields;
  if (action === undefined || result === undefined) return null;
  delete fields.action;
  delete fields.result;
  const time = ISO_TIME.exec(head)?.[0];
  return { time: time === undefined ? null : Date.parse(time), level: LEVEL.exec(head)?.[1] ?? 'INFO', action, result, fields };
}

function parseJson(text: string): Parsed | null {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null || typeof o.action !== 'string') return null;
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!JSON_HIDDEN.has(k) && v !== undefined) fields[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return {
    time: typeof o.time === 'number' ? o.time : typeof o.time === 'string' ? Date.parse(o.time) : null,
    level: PINO_LEVELS[o.level as number] ?? 'INFO',
    action: o.action,
    result: typeof o.result === 'string' ? o.result : 'success',
    fields,
  };
}

export interface ReadLines {
  entries: Entry[];
  others: OtherLine[];
  /** `NAME exited with code N`, as an attached `docker compose up` prints it. */
  exits: Map<string, number>;
}

const EXITED = /^(\S+) exited with code (\d+)$/;

/**
 * Reads one input. `fallbackSource` names the process of lines that carry no prefix.
 * `start` is the index of the first line, so several inputs keep one order.
 */
export function readLines(text: string, fallbackSource: string, start = 0): ReadLines {
  const entries: Entry[] = [];
  const others: OtherLine[] = [];
  const exits = new Map<string, number>();
  const unprefixed: OtherLine[] = [];
  // A timestamped line seen twice is a replay (Compose v1 reprints a tail when it re-attaches).
  const seen = new Set<string>();
  let index = start;
  for (const rawLine of text.split(/\r?\n/)) {
    const clean = rawLine.replace(ANSI, '').trimEnd();
    if (clean.trim() === '') continue;
    const prefixed = PREFIX.exec(clean);
    const source = prefixed?.[1] ?? fallbackSource;
    const body = (prefixed?.[2] ?? clean).trim();
    const parsed = body.startsWith('{') ? parseJson(body) : parseText(body);
    index++;
    const exited = prefixed === null ? EXITED.exec(body) : null;
    if (exited !== null) exits.set(exited[1]!, Number(exited[2]));
    else if (parsed !== null) {
      const key = `${source}\u0000${body}`;
      if (parsed.time !== null && seen.has(key)) continue;
      seen.add(key);
      entries.push({ index, source, text: body, ...parsed });
    } else (prefixed === null ? unprefixed : others).push({ index, source, text: body });
  }
  // Beside prefixed lines, unprefixed ones are Compose's own chatter (Creating..., Attaching...).
  const anyPrefixed = entries.some((e) => e.source !== fallbackSource) || others.length > 0;
  if (!anyPrefixed) others.push(...unprefixed);
  return { entries, others, exits };
}
