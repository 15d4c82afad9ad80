/**
 * Build time only (tools/bundle.ts): one whole lottery in this process, so that the bundle's
 * code cache holds the bytecode of what a run executes and a start compiles none of it again:
 * a server with one pool worker (as the default on two cores) on 127.0.0.1 (port 0) storing
 * into a temporary directory, configured by an empty .ini of its own (a developer's
 * server/config.ini, with TLS or metrics, stays out), and one agency over a real socket that
 * proves with no key, sends a batch of two bets, FINISHED and its WINNERS_QUERY. The pool's
 * side of the main thread (piscina, bundled) is then in the cache; the tasks' code runs in the
 * worker, which has a cache of its own (tools/write-worker-cache.ts).
 * The logger writes nowhere; the run is bounded, and the directory removed however it ends.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NO_KEY_PROOF } from '../shared/auth/proof.js';
import { createLogger } from '../shared/logging/logger.js';
import { BatchBuilder, MAX_ENCODED_BET, writeBet } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { MessageType, PROTOCOL_VERSION, type Message } from '../shared/protocol/messages.js';
import { withDeadline } from '../shared/util/async.js';
import { loadServerConfig } from './config.js';
import { LotteryServer } from './server.js';

const WARM_UP_MS = 10_000;
/** The warm-up lottery's only agency. */
export const WARM_UP_AGENCY = 1;
const WINNER = '30111222';

/** Resolves with the winners the agency was told. */
export async function warmUp(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'loteria-warm-up-'));
  try {
    const ini = join(dir, 'config.ini');
    writeFileSync(ini, '[DEFAULT]\n');
    const config = loadServerConfig({
      SERVER_CONFIG: ini,
      SERVER_HOST: '127.0.0.1',
      SERVER_PORT: '0',
      SERVER_AGENCIES: String(WARM_UP_AGENCY),
      SERVER_STORAGE_PATH: join(dir, 'bets.csv'),
      SERVER_AUTH: 'off',
      SERVER_WORKERS: '1',
    });
    const log = createLogger({ level: 'info', format: 'text', destination: { write: () => true } });
    const server = await LotteryServer.open(config, log);
    try {
      const { port } = await server.listen();
      return await oneAgency(port);
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The agency's whole run; rejects on an ERROR, a connection closed before WINNERS, or WARM_UP_MS. */
async function oneAgency(port: number): Promise<string[]> {
  const socket = connect({ host: '127.0.0.1', port });
  const winners = new Promise<string[]>((resolve, reject) => {
    const documents: string[] = [];
    let done = false;
    socket.once('error', reject);
    socket.once('close', () => (done ? resolve(documents) : reject(new Error('the server closed the connection before WINNERS'))));
    socket.once('connect', () => send(socket, { type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: WARM_UP_AGENCY }));
    const reply = (m: Message): void => {
      if (m.type === MessageType.WINNERS) {
        documents.push(...m.documents);
        done = m.last;
        if (done) socket.end();
      } else answer(socket, m);
    };
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of decoder.push(chunk)) reply(decodeMessage(frame));
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
  });
  try {
    return await withDeadline(winners, WARM_UP_MS, () => new Error(`no WINNERS within ${WARM_UP_MS} ms`));
  } finally {
    socket.destroy();
  }
}

function send(socket: Socket, m: Parameters<typeof encodeMessage>[0]): void {
  socket.write(encodeMessage(m));
}

/** The agency's side of everything before the WINNERS. */
function answer(socket: Socket, m: Message): void {
  if (m.type === MessageType.CHALLENGE) send(socket, { type: MessageType.PROOF, mac: NO_KEY_PROOF });
  else if (m.type === MessageType.WELCOME) socket.write(twoBets());
  else if (m.type === MessageType.BATCH_ACK) {
    send(socket, { type: MessageType.FINISHED, notification: 'FIRST_NOTIFICATION', agency: WARM_UP_AGENCY });
    send(socket, { type: MessageType.WINNERS_QUERY, agency: WARM_UP_AGENCY });
  } else if (m.type === MessageType.ERROR) socket.destroy(new Error(`the server answered ERROR ${m.code}: ${m.message}`));
}

/** The agency's first two bets, encoded back to back as a BATCH frame carries them; 7574 wins. */
export function warmUpBets(): { bytes: Buffer; ends: number[] } {
  const bytes = Buffer.alloc(2 * MAX_ENCODED_BET);
  const ends: number[] = [];
  for (const number of [7574, 1]) {
    const bet = { agency: WARM_UP_AGENCY, firstName: 'Ana', lastName: 'Paz', document: WINNER, birthdate: '1990-01-02', number };
    ends.push(writeBet(bytes, ends.at(-1) ?? 0, bet));
  }
  return { bytes, ends };
}

/** A BATCH frame of the agency's first two bets, one of them a winner. */
function twoBets(): Buffer {
  const { bytes, ends } = warmUpBets();
  const builder = new BatchBuilder(150);
  builder.addEncoded({ bytes, ends, count: ends.length }, 0);
  return builder.take(0);
}
