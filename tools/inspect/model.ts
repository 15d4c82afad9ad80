/**
 * Groups entries into process lifetimes (one per start of a process: a `config` line opens
 * one, so `docker restart server` gives the same name two lifetimes) and lifetimes into runs.
 * A run is what one bets file sees: server lifetimes follow each other in one run while a
 * client lifetime spans the gap (a client that reconnects after a server restart); a server
 * start after every client of the run has ended opens the next run.
 */
import type { Entry, OtherLine } from './lines.js';

export const Role = { SERVER: 'server', CLIENT: 'client', UNKNOWN: 'unknown' } as const;
export type Role = (typeof Role)[keyof typeof Role];

const SERVER_ACTIONS = new Set([
  'listen',
  'apuesta_recibida',
  'apuesta_duplicada',
  'notificacion',
  'sorteo',
  'close_acceptor',
  'close_pool',
]);
const CLIENT_ACTIONS = new Set(['apuesta_enviada', 'notificacion_enviada', 'close_file', 'close_socket', 'apuesta_invalida', 'connect']);

export interface Lifetime {
  name: string;
  role: Role;
  /** A client's agency (its `id`); null for the server. */
  agency: number | null;
  entries: Entry[];
  others: OtherLine[];
  start: number | null;
  end: number | null;
  /** Set by the caller from Docker (`--exit name=code`) for the last lifetime of a name. */
  exitCode: number | null;
  running: boolean;
  /** The next lifetime of the same name (its `config` line): this one ended and it was started again. */
  successor: Lifetime | null;
}

export interface Run {
  index: number;
  servers: Lifetime[];
  clients: Lifetime[];
  /** Neither server nor client (a one-shot such as compose's `data`): shown, never checked. */
  others: Lifetime[];
}

function roleOf(name: string, entries: Entry[]): Role {
  const config = entries.find((e) => e.action === 'config');
  if (config?.fields.agencies !== undefined || config?.fields.storagePath !== undefined) return Role.SERVER;
  if (config?.fields.id !== undefined || config?.fields.dataFile !== undefined) return Role.CLIENT;
  if (entries.some((e) => SERVER_ACTIONS.has(e.action))) return Role.SERVER;
  if (entries.some((e) => CLIENT_ACTIONS.has(e.action))) return Role.CLIENT;
  if (/server/i.test(name)) return Role.SERVER;
  if (/client|agenc/i.test(name)) return Role.CLIENT;
  return Role.UNKNOWN;
}

function agencyOf(name: string, entries: Entry[]): number | null {
  const id = entries.find((e) => e.action === 'config')?.fields.id;
  if (id !== undefined && /^\d+$/.test(id)) return Number(id);
  const m = /(?:client|agency|agencia)[-_]?(\d+)/i.exec(name);
  return m === null ? null : Number(m[1]);
}

function firstTime(entries: Entry[]): number | null {
  return entries.find((e) => e.time !== null)?.time ?? null;
}
function lastTime(entries: Entry[]): number | null {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]?.time != null) return entries[i]!.time;
  return null;
}

function lifetime(name: string, entries: Entry[], others: OtherLine[]): Lifetime {
  const role = roleOf(name, entries);
  return {
    name,
    role,
    agency: role === Role.CLIENT ? agencyOf(name, entries) : null,
    entries,
    others,
    start: firstTime(entries),
    end: lastTime(entries),
    exitCode: null,
    running: false,
    successor: null,
  };
}

/** Splits each source's lines at every `config` line; other lines go to the lifetime they follow. */
export function lifetimes(entries: Entry[], others: OtherLine[]): Lifetime[] {
  const bySource = new Map<string, Array<Entry | OtherLine>>();
  for (const line of [...entries, ...others].sort((a, b) => a.index - b.index)) {
    const list = bySource.get(line.source) ?? [];
    list.push(line);
    bySource.set(line.source, list);
  }
  const out: Lifetime[] = [];
  for (const [name, lines] of bySource) {
    let current: { entries: Entry[]; others: OtherLine[] } = { entries: [], others: [] };
    const flush = (): void => {
      if (current.entries.length > 0) out.push(lifetime(name, current.entries, current.others));
      else if (current.others.length > 0 && out.at(-1)?.name === name) out.at(-1)!.others.push(...current.others);
      else if (current.others.length > 0) out.push(lifetime(name, [], current.others));
    };
    for (const line of lines) {
      const isEntry = 'action' in line;
      if (isEntry && line.action === 'config' && current.entries.length > 0) {
        flush();
        current = { entries: [], others: [] };
      }
      if (isEntry) current.entries.push(line);
      else current.others.push(line);
    }
    flush();
  }
  for (let i = 0; i + 1 < out.length; i++) if (out[i + 1]!.name === out[i]!.name) out[i]!.successor = out[i + 1]!;
  return out;
}

/**
 * Whether server lifetime `l` ran beside a server of another name (several servers sharing
 * one database, issue 13): it started while that one was up. Their lines interleave in time,
 * so "what was logged before this start" is a matter of timestamps, not of lifetime order.
 */
export function besideAnother(servers: readonly Lifetime[], l: Lifetime): boolean {
  if (l.start === null) return false;
  const at = l.start;
  return servers.some(
    (o) => o !== l && o.name !== l.name && o.start !== null && o.start <= at && (o.running || o.end === null || o.end >= at),
  );
}

/** The run has servers of several names up at the same time. */
export function concurrentServers(servers: readonly Lifetime[]): boolean {
  return servers.some((l) => besideAnother(servers, l));
}

const startOf = (l: Lifetime): number => l.start ?? l.entries[0]?.index ?? l.others[0]?.index ?? 0;

/** Groups lifetimes into runs (see the file comment). Lines without timestamps fall into one run. */
export function runs(all: Lifetime[]): Run[] {
  const servers = all.filter((l) => l.role === Role.SERVER).sort((a, b) => startOf(a) - startOf(b));
  const clients = all.filter((l) => l.role === Role.CLIENT);
  const result: Run[] = [];
  const runStarts: number[] = [];
  for (const server of servers) {
    const current = result.at(-1);
    const begin = server.start;
    const runStart = runStarts.at(-1) ?? 0;
    const spans = (c: Lifetime): boolean =>
      c.start !== null && begin !== null && c.start < begin && (c.running || c.end === null || c.end >= begin);
    const seen = clients.filter((c) => c.start !== null && begin !== null && c.start >= runStart && c.start < begin);
    if (current !== undefined && (begin === null || clients.some(spans) || seen.length === 0)) current.servers.push(server);
    else {
      result.push({ index: result.length + 1, servers: [server], clients: [], others: [] });
      runStarts.push(begin ?? 0);
    }
  }
  if (result.length === 0) result.push({ index: 1, servers: [], clients: [], others: [] });
  const runOf = (l: Lifetime): Run => {
    let at = 0;
    for (let i = 1; i < runStarts.length; i++) if (l.start !== null && l.start >= (runStarts[i] ?? 0)) at = i;
    return result[at]!;
  };
  const byAgency = (a: Lifetime, b: Lifetime): number => (a.agency ?? 0) - (b.agency ?? 0) || startOf(a) - startOf(b);
  for (const c of [...clients].sort(byAgency)) runOf(c).clients.push(c);
  for (const o of all.filter((l) => l.role === Role.UNKNOWN)) runOf(o).others.push(o);
  return result;
}
