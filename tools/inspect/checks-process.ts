/**
 * Invariants about processes: every `result: fail` has a cause the log itself shows, and
 * every process ended with its `exit` line after closing what it held (in the server's
 * documented order when a signal stopped it).
 */
import type { Entry } from './lines.js';
import { Role, type Lifetime } from './model.js';
import { at, type Check } from './checks.js';
import type { RunTally } from './tally.js';

const iso = (ms: number | null): string => (ms === null ? '?' : new Date(ms).toISOString().slice(11, 23));
const SERVER_CLOSING = ['close_acceptor', 'close_pool', 'close_storage', 'exit'];
const SERVER_CLOSING_DB = SERVER_CLOSING.filter((a) => a !== 'close_pool');

function after(l: Lifetime, action: string, e: Entry): boolean {
  const i = l.entries.findIndex((x) => x.action === action);
  return i >= 0 && l.entries.indexOf(e) > i;
}

/**
 * A client failing after it lost its server: at `time` the latest lifetime of a server (of
 * any name: several servers may share a database) had begun stopping or had ended (killed
 * lifetimes count once known ended) and no later one of that name had started.
 */
function serverGoneBy(t: RunTally, time: number | null): string | null {
  if (time === null) return null;
  const names = [...new Set(t.run.servers.map((s) => s.name))];
  for (const name of names) {
    const current = t.run.servers.filter((s) => s.name === name && (s.start === null || s.start <= time)).at(-1);
    if (current === undefined) continue;
    const end = t.endings.get(current)!;
    const ended = end.exit !== null || end.configFail !== null || end.killed;
    const gone = end.shutdownAt ?? (ended ? current.end : null);
    if (gone === null || gone > time) continue;
    const how =
      end.configFail !== null
        ? 'refused its configuration'
        : end.killed
          ? 'ended with no exit line (killed)'
          : `stopped (${end.signal ?? 'exit'})`;
    const who = names.length > 1 ? `server ${name}` : 'the server';
    return `${who} had ${how} at ${iso(gone)}`;
  }
  return null;
}

/** Another process stopped by a signal before `time` and not started again by then. */
function otherStoppedBy(t: RunTally, owner: Lifetime, time: number | null): string | null {
  for (const l of [...t.run.servers, ...t.run.clients]) {
    const end = t.endings.get(l)!;
    const back = l.successor?.start != null && time !== null && l.successor.start <= time;
    if (l !== owner && !back && end.signal !== null && end.shutdownAt !== null && time !== null && end.shutdownAt <= time)
      return `${l.name} was stopped by ${end.signal} at ${iso(end.shutdownAt)}, so the run could not complete`;
  }
  return null;
}

function explainServerFail(t: RunTally, e: Entry): string | null {
  const agency = Number(e.fields.agencia);
  const a = t.agencies.find((x) => x.agency === agency);
  const client = a?.clients.at(-1);
  // No agency yet: the peer never said HELLO (the health check killed under load, a probe).
  if ((e.action === 'conexion' || e.action === 'desconexion') && (e.fields.agencia ?? '0') === '0')
    return 'a connection that never said HELLO (a health check, a probe) was dropped';
  if (e.action === 'apuesta_recibida' && a?.refusedByClient.byLote.has(e.fields.lote ?? ''))
    return `batch refused: ${e.fields.error ?? '?'}`;
  if (e.action === 'apuesta_fuera_de_orden' && a !== undefined) {
    const resumed = a.welcomes.find((w) => w.entry.time !== null && e.time !== null && w.entry.time >= e.time);
    if (resumed !== undefined) return `OUT_OF_ORDER: ${resumed.by.name} resumed from bet ${resumed.next} at its next WELCOME`;
  }
  if (client !== undefined) {
    const end = t.endings.get(client)!;
    const stopAt = end.shutdownAt ?? end.exit?.time ?? null;
    // The peer's socket closes after its shutdown line; its exit line may come just after ours.
    if (end.signal !== null || end.exit?.result === 'fail')
      if (stopAt !== null && e.time !== null && stopAt <= e.time + 1000)
        return `${client.name} was stopping (${end.signal ?? 'exit fail'})`;
  }
  return null;
}

function explainClientFail(t: RunTally, owner: Lifetime, e: Entry): string | null {
  const a = t.agencies.find((x) => x.agency === owner.agency);
  if (e.action === 'apuesta_enviada' && a?.refusedByServer.byLote.has(e.fields.lote ?? ''))
    return `batch refused by the server: ${e.fields.error ?? '?'}`;
  if (e.action === 'conexion' && outOfOrder(t, owner, e))
    return 'the server answered OUT_OF_ORDER; the client resumes from its next WELCOME';
  return serverGoneBy(t, e.time) ?? otherStoppedBy(t, owner, e.time);
}

/** A client's lost connection right after the server logged an OUT_OF_ORDER batch of its agency. */
function outOfOrder(t: RunTally, owner: Lifetime, e: Entry): boolean {
  if (e.time === null) return false;
  const at = e.time;
  return t.run.servers.some((s) =>
    s.entries.some(
      (x) =>
        x.action === 'apuesta_fuera_de_orden' &&
        Number(x.fields.agencia) === owner.agency &&
        x.time !== null &&
        x.time <= at + 1000 &&
        x.time >= at - 1000,
    ),
  );
}

/** Why a fail line happened, from the log alone; null when the log shows no cause. */
export function explain(t: RunTally, owner: Lifetime, e: Entry): string | null {
  const end = t.endings.get(owner)!;
  if (after(owner, 'shutdown', e)) return `during ${owner.name}'s shutdown (${end.signal ?? 'signal'})`;
  if (e.action === 'apuesta_invalida') return `bad row skipped and reported: ${e.fields.archivo ?? '?'} line ${e.fields.linea ?? '?'}`;
  if (owner.role === Role.SERVER) return explainServerFail(t, e);
  if (owner.role === Role.CLIENT) return explainClientFail(t, owner, e);
  return null;
}

export function failsExplained(t: RunTally): Check {
  const evidence: string[] = [];
  let ok = true;
  for (const l of [...t.run.servers, ...t.run.clients]) {
    for (const e of l.entries.filter((x) => x.result === 'fail')) {
      const why = explain(t, l, e);
      if (why === null) ok = false;
      evidence.push(`${why === null ? 'UNEXPLAINED' : 'explained'}: ${at(e)}${why === null ? '' : `  (${why})`}`);
    }
  }
  if (evidence.length === 0) evidence.push('no line has result: fail');
  return { id: 'fails_explained', title: 'every result: fail explained', ok, evidence };
}

function inOrder(l: Lifetime, steps: string[]): boolean {
  let from = l.entries.findIndex((e) => e.action === 'shutdown');
  for (const step of steps) {
    const i = l.entries.findIndex((e, k) => k > from && e.action === step && e.result === 'success');
    if (i < 0) return false;
    from = i;
  }
  return true;
}

function exitOf(t: RunTally, l: Lifetime, last: boolean): { ok: boolean; text: string } {
  const end = t.endings.get(l)!;
  const code = end.code === null ? '' : ` code ${end.code}${end.codeFrom === 'docker' ? ' (docker)' : ''}`;
  const by = end.signal === null ? '' : ` after ${end.signal}`;
  if (end.configFail !== null)
    return { ok: true, text: `${l.name}: refused its configuration and exited${code}: ${end.configFail.fields.error ?? ''}` };
  if (end.exit === null) {
    const tail = l.others.slice(-3).map((o) => o.text);
    const extra = tail.length > 0 ? `; last other lines: ${tail.join(' / ')}` : '';
    if (end.running && last && end.shutdownAt === null) return { ok: true, text: `${l.name}: still running (docker), no shutdown begun` };
    if (l.successor !== null) {
      // Killed (SIGKILL prints nothing); lines after its last event are a crash's (a stack trace).
      const lastIndex = l.entries.at(-1)?.index ?? -1;
      const crash = l.others.filter((o) => o.index > lastIndex).map((o) => o.text);
      const again = `started again at ${iso(l.successor.start)}`;
      if (crash.length === 0) return { ok: true, text: `${l.name}: no exit line (killed, as by SIGKILL), ${again}` };
      return { ok: false, text: `${l.name}: crashed, ${again}; its last lines: ${crash.slice(-3).join(' / ')}` };
    }
    // Several servers sharing a database: one killed for good, its agencies moved to the others.
    if (l.role === Role.SERVER && end.codeFrom === 'docker' && end.code === 137 && t.run.servers.some((s) => s.name !== l.name))
      return { ok: true, text: `${l.name}: killed (exit 137 from Docker: SIGKILL), not started again; the other servers carried on` };
    const why = end.running
      ? 'still running mid-shutdown'
      : end.code !== null
        ? `exited${code} without an exit line (killed?)`
        : 'no exit line: killed, crashed, or still running (--running NAME when it is up)';
    return { ok: false, text: `${l.name}: ${why}${extra}` };
  }
  const missing: string[] = [];
  const has = (a: string): boolean => l.entries.some((e) => e.action === a && e.result === 'success');
  // The PostgreSQL backend has no worker pool (the database does the work): no close_pool. A
  // server stopped before it listened (while it waited for its database) had no acceptor to close.
  const backend = l.entries.find((e) => e.action === 'config')?.fields.storage === 'postgres' ? SERVER_CLOSING_DB : SERVER_CLOSING;
  const closing = has('listen') ? backend : backend.filter((a) => a !== 'close_acceptor');
  if (l.role === Role.SERVER && end.shutdownAt !== null && !inOrder(l, closing)) missing.push(`${closing.join(', ')} in that order`);
  if (l.role === Role.CLIENT && has('connect') && !has('close_socket')) missing.push('close_socket');
  if (l.role === Role.CLIENT && has('apuesta_enviada') && !has('close_file')) missing.push('close_file');
  const problems = missing.length > 0 ? [`missing ${missing.join('; ')}`] : [];
  if (end.codeFrom === 'docker' && end.logCode !== null && end.code !== end.logCode)
    problems.push(`its exit line implies exit code ${end.logCode}, Docker reports ${end.code}`);
  const shown = `${l.name}: exit | result: ${end.exit.result}${by}${code}; ${end.sequence.join(' > ')}`;
  return problems.length > 0 ? { ok: false, text: `${shown}  <-- ${problems.join('; ')}` } : { ok: true, text: shown };
}

export function processesExited(t: RunTally): Check {
  const all = [...t.run.servers, ...t.run.clients];
  let ok = true;
  const evidence = all.map((l) => {
    const last = all.filter((x) => x.name === l.name).at(-1) === l;
    const r = exitOf(t, l, last);
    ok &&= r.ok;
    return r.text;
  });
  if (evidence.length === 0) evidence.push('no process found');
  return { id: 'processes_exited', title: 'every process exited (after closing its resources)', ok: ok && all.length > 0, evidence };
}
