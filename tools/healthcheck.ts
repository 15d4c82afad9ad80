/**
 * Health probe for the server (Docker HEALTHCHECK / compose `healthcheck`): connects,
 * sends PING, and exits 0 only when a PONG arrives within the timeout; 1 otherwise.
 * Needs nothing beyond the server image: `node dist/tools/healthcheck.js [host:port]`.
 * Without an argument it probes the port the server itself would use (server/config.ini
 * and SERVER_* variables), on 127.0.0.1 when the server listens on every interface.
 * Prints one line on failure only, so Docker's health log says why.
 * When the server's configuration has TLS (SERVER_TLS_CERT), or HEALTHCHECK_TLS=on with an
 * explicit address, the probe speaks TLS without checking the certificate: it checks that the
 * server answers, sends nothing secret (PING needs no key), and runs beside the server.
 */
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { hostPort, onOff } from '../shared/config/values.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { MessageType, messageTypeName } from '../shared/protocol/messages.js';
import { loadServerConfig } from '../server/config.js';

const TIMEOUT_MS = Number(process.env.HEALTHCHECK_TIMEOUT_MS ?? 2000);
const WILDCARD = new Set(['0.0.0.0', '::', '']);

interface Target {
  host: string;
  port: number;
  tls: boolean;
}

function target(): Target {
  const arg = process.argv[2] ?? process.env.HEALTHCHECK_ADDRESS;
  if (arg !== undefined && arg !== '')
    return { ...hostPort('address', arg), tls: onOff('HEALTHCHECK_TLS', process.env.HEALTHCHECK_TLS || 'off') };
  const config = loadServerConfig();
  return { host: WILDCARD.has(config.host) ? '127.0.0.1' : config.host, port: config.port, tls: config.tls !== null };
}

function probe({ host, port, tls }: Target): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls ? tlsConnect({ host, port, rejectUnauthorized: false }) : connect({ host, port });
    const decoder = new FrameDecoder();
    const done = (problem: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done(`no PONG from ${host}:${port} within ${TIMEOUT_MS} ms`), TIMEOUT_MS);
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write(encodeMessage({ type: MessageType.PING })));
    socket.on('data', (chunk: Buffer) => {
      try {
        const frame = decoder.push(chunk)[0];
        if (frame === undefined) return;
        const msg = decodeMessage(frame);
        done(msg.type === MessageType.PONG ? null : `expected PONG from ${host}:${port}, got ${messageTypeName(msg.type)}`);
      } catch (err) {
        done(`bad reply from ${host}:${port}: ${(err as Error).message}`);
      }
    });
    socket.once('error', (err) => done(`cannot reach ${host}:${port}: ${err.message}`));
    socket.once('close', () => done(`${host}:${port} closed the connection before answering`));
  });
}

let problem: string | null;
try {
  problem = await probe(target());
} catch (err) {
  problem = (err as Error).message;
}
if (problem !== null) console.error(`healthcheck: ${problem}`);
process.exit(problem === null ? 0 : 1);
