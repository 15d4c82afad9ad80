/**
 * The floor's receiver: a plain TCP server that appends every byte it receives, from every
 * connection, to one file. After `expected` connections have ended it prints one JSON line
 * (first connection, last byte written, bytes) and exits.
 * Usage: node dist/bench/floor-sink.js PORT OUT_FILE EXPECTED_CONNECTIONS
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';

const now = (): number => performance.timeOrigin + performance.now();
const [port, outFile, expectedText] = process.argv.slice(2);
const expected = Number(expectedText);
const fd = openSync(outFile ?? 'floor.out', 'a');
let firstConnAt = 0;
let lastByteAt = 0;
let bytes = 0;
let ended = 0;

const server = createServer((socket) => {
  if (firstConnAt === 0) firstConnAt = now();
  socket.on('data', (chunk: Buffer) => {
    let off = 0;
    while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
    bytes += chunk.length;
    lastByteAt = now();
  });
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    if (++ended < expected) return;
    closeSync(fd);
    process.stdout.write(`${JSON.stringify({ firstConnAt, lastByteAt, doneAt: now(), bytes, connections: ended })}\n`);
    server.close();
    process.exit(0);
  });
});
server.listen({ host: '127.0.0.1', port: Number(port), backlog: 4096 }, () => {
  process.stdout.write(`${JSON.stringify({ listeningAt: now() })}\n`);
});
