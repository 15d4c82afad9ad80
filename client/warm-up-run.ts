/**
 * Build time only (tools/bundle.ts, through warmUp): one whole agency run in this process —
 * AgencyClient over a real socket on 127.0.0.1 to a scripted peer that answers like a server
 * with SERVER_AUTH=off — so that the bundle's code cache also holds the bytecode of the
 * connection, the handshake, the sender, the reader and the winners query. The run reads a
 * config.yaml and a data file of its own in a temporary directory (a developer's
 * client/config.yaml, with TLS, a key or odd timeouts, stays out); it is bounded, and the
 * directory and every socket are gone however it ends. Nothing printed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../shared/logging/logger.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { AckStatus, MessageType, NONCE_BYTES, type Message } from '../shared/protocol/messages.js';
import { withDeadline } from '../shared/util/async.js';
import { AgencyClient } from './agency-client.js';
import { loadClientConfig } from './config.js';

const WARM_UP_MS = 10_000;
const ROWS = 'Ana,Paz,30111222,1990-01-02,7574\nLuis,Sol,30111223,1985-12-31,1\n';
const WINNERS = ['30111222'];

/** Resolves with the winners the scripted peer told the client. */
export async function warmUpRun(log: Logger): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'loteria-client-warm-up-'));
  const peers = new Set<Socket>();
  const server = createServer((socket) => {
    peers.add(socket.once('close', () => peers.delete(socket)));
    answer(socket);
  });
  try {
    const dataFile = join(dir, 'agency.csv');
    writeFileSync(dataFile, ROWS);
    writeFileSync(join(dir, 'config.yaml'), 'batch:\n  maxAmount: 1\n');
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const env = { CLI_CONFIG: join(dir, 'config.yaml'), CLI_ID: '1', CLI_SERVER_ADDRESS: `127.0.0.1:${port}`, CLI_DATA_FILE: dataFile };
    const client = new AgencyClient(loadClientConfig(env), log);
    try {
      const summary = await withDeadline(client.run(), WARM_UP_MS, () => new Error(`no winners within ${WARM_UP_MS} ms`));
      if (summary.winners === null) throw new Error('the run ended without its winners');
      return summary.winners;
    } finally {
      await client.stop();
    }
  } finally {
    for (const socket of peers) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The server's side of one happy run: CHALLENGE, WELCOME from 0, every batch stored, the winners. */
function answer(socket: Socket): void {
  const decoder = new FrameDecoder();
  let agency = 0;
  const send = (m: Parameters<typeof encodeMessage>[0]): void => {
    socket.write(encodeMessage(m));
  };
  const reply = (m: Message): void => {
    switch (m.type) {
      case MessageType.HELLO:
        agency = m.agency;
        send({ type: MessageType.CHALLENGE, nonce: Buffer.alloc(NONCE_BYTES) });
        break;
      case MessageType.PROOF:
        send({ type: MessageType.WELCOME, agency, next: 0, finished: false });
        break;
      case MessageType.BATCH:
        send({ type: MessageType.BATCH_ACK, first: m.first, status: AckStatus.STORED, count: m.count });
        break;
      case MessageType.FINISHED:
        send({ type: MessageType.FINISHED_ACK, finished: 1, expected: 1 });
        break;
      case MessageType.WINNERS_QUERY:
        send({ type: MessageType.WINNERS, last: true, documents: WINNERS });
        break;
    }
  };
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const frame of decoder.push(chunk)) reply(decodeMessage(frame));
    } catch {
      socket.destroy();
    }
  });
}
