/**
 * Build time only (tools/bundle.ts): one whole lottery in this process, so that the bundle's
 * code cache holds the bytecode of what a run's main thread executes (a start compiles none
 * of it again): an inline server on 127.0.0.1 (port 0) storing into a temporary directory,
 * and one agency over a real socket that proves with no key, sends a batch of two bets,
 * FINISHED and its WINNERS_QUERY. The logger writes nowhere; the directory is removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_KEY_PROOF } from '../shared/auth/proof.js';
import { createLogger } from '../shared/logging/logger.js';
import { BatchBuilder, MAX_ENCODED_BET, writeBet } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { MessageType, PROTOCOL_VERSION, type Message } from '../shared/protocol/messages.js';
import { loadServerConfig } from './config.js';
import { LotteryServer } from './server.js';

export async function warmUp(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'loteria-warm-up-'));
  try {
    const config = loadServerConfig({
      SERVER_HOST: '127.0.0.1',
      SERVER_PORT: '0',
      SERVER_AGENCIES: '1',
      SERVER_STORAGE_PATH: join(dir, 'bets.csv'),
      SERVER_STORAGE: 'file',
      SERVER_AUTH: 'off',
      SERVER_WORKERS: '0',
      SERVER_METRICS_PORT: '',
      SERVER_TLS_CERT: '',
      SERVER_TLS_KEY: '',
    });
    const log = createLogger({ level: 'info', format: 'text', destination: { write: () => true } });
    const server = await LotteryServer.open(config, log);
    try {
      const { port } = await server.listen();
      await oneAgency(port);
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Resolves once the agency has its WINNERS; rejects on an ERROR or a connection closed before. */
function oneAgency(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const decoder = new FrameDecoder();
    const send = (m: Parameters<typeof encodeMessage>[0]): void => {
      socket.write(encodeMessage(m));
    };
    const batch = twoBets();
    let done = false;
    const onMessage = (m: Message): void => {
      if (m.type === MessageType.CHALLENGE) send({ type: MessageType.PROOF, mac: NO_KEY_PROOF });
      else if (m.type === MessageType.WELCOME) socket.write(batch);
      else if (m.type === MessageType.BATCH_ACK) {
        send({ type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: 1 });
        send({ type: MessageType.WINNERS_QUERY, agency: 1 });
      } else if (m.type === MessageType.WINNERS && m.last) {
        done = true;
        socket.end();
      } else if (m.type === MessageType.ERROR) socket.destroy(new Error(`the server answered ERROR ${m.code}: ${m.message}`));
    };
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) onMessage(decodeMessage(frame));
    });
    socket.once('error', reject);
    socket.once('close', () => (done ? resolve() : reject(new Error('the server closed the connection before WINNERS'))));
    socket.once('connect', () => send({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: 1 }));
  });
}

/** A BATCH frame of agency 1's first two bets, one of them a winner. */
function twoBets(): Buffer {
  const bytes = Buffer.alloc(2 * MAX_ENCODED_BET);
  const ends: number[] = [];
  for (const number of [7574, 1]) {
    const bet = { agency: 1, firstName: 'Ana', lastName: 'Paz', document: '30111222', birthdate: '1990-01-02', number };
    ends.push(writeBet(bytes, ends.at(-1) ?? 0, bet));
  }
  const builder = new BatchBuilder(150);
  builder.addEncoded({ bytes, ends, count: ends.length }, 0);
  return builder.take(0);
}
