/**
 * Health probe for the server (Docker HEALTHCHECK / compose `healthcheck`): connects,
 * sends PING, and exits 0 only when a PONG arrives within the timeout; 1 otherwise.
 * Needs nothing beyond the server image: `node dist/tools/healthcheck.js [host:port]`.
 * Without an argument it probes the port the server itself would use (server/config.ini
 * and SERVER_* variables), on 127.0.0.1 when the server listens on every interface.
 * Prints one line on failure only, so Docker's health log says why.
 */
import { connect } from 'node:net';
import { hostPort } from '../shared/config/values.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { MessageType, messageTypeName } from '../shared/protocol/messages.js';
import { loadServerConfig } from '../server/config.js';

const TIMEOUT_MS = Number(process.env.HEALTHCHECK_TIMEOUT_MS ?? 2000);
const WILDCARD = new Set(['0.0.0.0', '::', '']);

function target(): { host: string; port: number } {
  const arg = process.argv[2] ?? process.env.HEALTHCHECK_ADDRESS;
  if (arg !== undefined && arg !== '') return hostPort('address', arg);
  const config = loadServerConfig();
  return { host: WILDCARD.has(config.host) ? '127.0.0.1' : config.host, port: config.port };
}

function probe(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const decoder = new FrameDecoder();
    const done = (problem: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done(`no PONG from ${host}:${port} within ${TIMEOUT_MS} ms`), TIMEOUT_MS);
    socket.once('connect', () => socket.write(encodeMessage({ type: MessageType.PING })));
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
  const { host, port } = target();
  problem = await probe(host, port);
} catch (err) {
  problem = (err as Error).message;
}
if (problem !== null) console.error(`healthcheck: ${problem}`);
process.exit(problem === null ? 0 : 1);
