/**
 * The floor's sender: connects one socket per file (retrying every 10 ms while the sink is
 * not listening yet), then streams each file, unchanged, into its socket and exits when
 * every socket has closed.
 * Usage: node dist/bench/floor-sender.js PORT FILE [FILE...]
 */
import { createReadStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { retryWithBackoff } from '../shared/util/async.js';

const [portText, ...files] = process.argv.slice(2);
const port = Number(portText);

function connectOnce(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Every 10 ms for up to 30 s. */
function connectRetry(): Promise<Socket> {
  return retryWithBackoff(connectOnce, { initialMs: 10, maxMs: 10, timeoutMs: 30_000 });
}

function stream(file: string, socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('close', () => resolve());
    socket.once('error', reject);
    createReadStream(file).pipe(socket);
  });
}

const sockets = await Promise.all(files.map(() => connectRetry()));
await Promise.all(files.map((file, i) => stream(file, sockets[i] as Socket)));
