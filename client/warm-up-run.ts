/**
 * Build time only (tools/bundle.ts, through warmUp): one whole agency run in this process —
 * AgencyClient over a real socket on 127.0.0.1 to a scripted peer that answers like a server
 * with SERVER_AUTH=off — so that the bundle's code cache also holds the bytecode of the
 * connection, the handshake, the sender, the reader and the winners query. A temporary data
 * file, removed after; nothing printed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../shared/logging/logger.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { AckStatus, MessageType, NONCE_BYTES, type Message } from '../shared/protocol/messages.js';
import { AgencyClient } from './agency-client.js';
import type { ClientConfig } from './config.js';

const ROWS = 'Ana,Paz,30111222,1990-01-02,7574\nLuis,Sol,30111223,1985-12-31,1\n';

export async function warmUpRun(config: ClientConfig, log: Logger): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'loteria-client-warm-up-'));
  const server = createServer(answer);
  try {
    const dataFile = join(dir, 'agency.csv');
    writeFileSync(dataFile, ROWS);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const servers = [{ host: '127.0.0.1', port }];
    const run: ClientConfig = { ...config, host: '127.0.0.1', port, servers, dataFile, key: null, tls: null };
    const summary = await new AgencyClient(run, log).run();
    if (summary.winners === null) throw new Error('the run ended without its winners');
  } finally {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The server's side of one happy run: CHALLENGE, WELCOME from 0, every batch stored, one winner list. */
function answer(socket: Socket): void {
  const decoder = new FrameDecoder();
  let agency = 0;
  const send = (m: Parameters<typeof encodeMessage>[0]): boolean => socket.write(encodeMessage(m));
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
        send({ type: MessageType.WINNERS, last: true, documents: ['30111222'] });
        break;
    }
  };
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) reply(decodeMessage(frame));
  });
}
