import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duplexPair } from 'node:stream';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Lottery } from '../server/lottery.js';
import { BetPool } from '../server/pool/bet-pool.js';
import { Session } from '../server/session.js';
import { ProtectedNotificationCounter } from '../server/storage/notification-counter.js';
import { ProtectedStorage, type StorageHandle } from '../server/storage/protected-storage.js';
import type { Bet } from '../shared/domain/bet.js';
import { createLogger } from '../shared/logging/logger.js';
import { BatchBuilder } from '../shared/protocol/bet-codec.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../shared/protocol/codec.js';
import { AckStatus, MessageType, PROTOCOL_VERSION, type Message } from '../shared/protocol/messages.js';

let dir: string;
let storage: StorageHandle;
let pool: BetPool;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dup-'));
  storage = ProtectedStorage.open(join(dir, 'bets.csv'));
  const counter = ProtectedNotificationCounter.allocate(1);
  pool = new BetPool({ workers: 1, init: { storage, counter, logLevel: 'info', logFormat: 'json' } });
});
afterEach(async () => {
  await pool.close();
  ProtectedStorage.close(storage);
  await rm(dir, { recursive: true, force: true });
});

const bet = (document: string): Bet => ({ agency: 1, firstName: 'Ana', lastName: 'Paz', document, birthdate: '1990-01-31', number: 5 });
function batch(seq: number, b: Bet): Buffer {
  const builder = new BatchBuilder(10);
  builder.add(b);
  return builder.take(seq);
}

it.each([
  ['the same seq twice', 1, 1],
  ['a lower seq after it', 2, 1],
])('a batch behind a refused one in the same run (%s) is not acknowledged DUPLICATE', async (_what, firstSeq, secondSeq) => {
  const log = createLogger({ level: 'silent', format: 'json' });
  const counter = new ProtectedNotificationCounter(ProtectedNotificationCounter.allocate(1));
  const lottery = new Lottery(pool, counter, log);
  const [client, server] = duplexPair();
  const session = new Session(1, server, lottery, log);
  const decoder = new FrameDecoder();
  const inbox: Message[] = [];
  let wake = (): void => {};
  client.on('data', (c: Buffer) => {
    for (const f of decoder.push(c)) inbox.push(decodeMessage(f));
    wake();
  });
  const next = async (): Promise<Message> => {
    while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
    return inbox.shift()!;
  };
  client.write(encodeMessage({ type: MessageType.HELLO, version: PROTOCOL_VERSION, agency: 1 }));
  expect(await next()).toMatchObject({ type: MessageType.WELCOME });
  const good = bet('200');
  client.write(Buffer.concat([batch(firstSeq, bet('20x')), batch(secondSeq, good)]));
  const acks = [await next(), await next()];
  const rows = readFileSync(storage.path, 'utf8');
  expect(acks[0], 'the bad batch').toMatchObject({ seq: firstSeq, status: AckStatus.REJECTED });
  expect(acks[1], `the good batch behind it; bets.csv holds:\n${rows}`).toMatchObject({ seq: secondSeq, status: AckStatus.STORED });
  expect(rows).toBe('1,Ana,Paz,200,1990-01-31,5\r\n');
  client.end();
  await session.close();
});
