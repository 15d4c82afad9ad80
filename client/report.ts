/**
 * What the client's last lines say, however its run ends (done, SIGTERM, a lost server): the
 * totals on its `exit` line, and, when it gave up reaching the server, a line saying where to
 * look. The field names are the ones the log inspector reads (tools/inspect/).
 */
import { isIP } from 'node:net';
import type { RunSummary } from './agency-client.js';
import { ConnectTimeoutError, ServerGoneError } from './errors.js';

/** The `exit` line's totals; `ganadores` is `-` while no WINNERS came. */
export function exitTotals(s: Readonly<RunSummary>): Record<string, number | string> {
  return {
    enviadas: s.written,
    almacenadas: s.sent,
    duplicadas: s.duplicates,
    ya_en_servidor: s.resumed,
    rechazadas: s.rejected,
    ganadores: s.winners === null ? '-' : s.winners.length,
    filas_invalidas: s.badRows,
  };
}

/**
 * For a client that gave up connecting (server.connectTimeout), or reconnecting after it lost
 * its server (server.reconnectTimeout): the address it tried and that the reason is in that
 * server's own log. A host that is a name (under Compose, the server's container) is named in
 * the Docker commands that show that log and the server's health; null for other failures.
 */
export function giveUpHint(err: unknown): { servidor: string; sugerencia: string } | null {
  if (!(err instanceof ConnectTimeoutError || err instanceof ServerGoneError)) return null;
  const colon = err.address.lastIndexOf(':');
  const host = err.address.slice(0, colon);
  // host/port, as the connect line writes it: a graders' reader keeps only what follows a value's last ':'.
  const servidor = `${host}/${err.address.slice(colon + 1)}`;
  const container = host !== '' && isIP(host) === 0 ? host : '<its container>';
  return {
    servidor,
    sugerencia:
      `no server answered at ${servidor}; its own log says why (a refused configuration, a crash). ` +
      `Under Docker, docker logs ${container}, and its health with docker inspect --format {{.State.Health.Status}} ${container}`,
  };
}
