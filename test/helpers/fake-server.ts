/**
 * A scripted server for the client's in-process tests: it speaks through the real codec over
 * one end of `stream.duplexPair()` (or an accepted TCP socket), and the test reads what the
 * client sent and answers what it likes. The other end goes to the client through `dial`,
 * with its writes counted, so a test can tell how many BATCH frames the client had written
 * at the moment it logged something.
 */
import { randomBytes } from 'node:crypto';
import { duplexPair, type Duplex } from 'node:stream';
import type { Dialer } from '../../client/dial.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../../shared/protocol/codec.js';
import { AckStatus, MessageType, NONCE_BYTES, type Message } from '../../shared/protocol/messages.js';
import { deferred, type Deferred } from '../../shared/util/async.js';

type Outgoing = Exclude<Message, { type: typeof MessageType.BATCH }>;

/** The server's side of one client connection. */
export class FakePeer {
  readonly stream: Duplex;
  readonly received: Message[] = [];
  /** Stream errors (a reset connection shows here). */
  readonly errors: Error[] = [];
  /** Resolves when the client's side has ended or the stream closed. */
  readonly ended: Promise<void>;
  readonly #decoder = new FrameDecoder();
  #read = 0;
  #waiter: Deferred<Message> | null = null;
  #over = false;

  constructor(stream: Duplex) {
    this.stream = stream;
    const ended = deferred();
    this.ended = ended.promise;
    stream.on('data', (chunk: Buffer) => {
      for (const frame of this.#decoder.push(chunk)) this.received.push(decodeMessage(frame));
      this.#wake();
    });
    const over = (): void => {
      this.#over = true;
      ended.resolve();
      this.#wake();
    };
    // As the real server does: once the client ends its side, end ours.
    stream.on('end', () => {
      over();
      stream.end();
    });
    stream.on('close', over);
    stream.on('error', (err) => this.errors.push(err));
  }

  #wake(): void {
    const w = this.#waiter;
    if (w === null) return;
    const msg = this.received[this.#read];
    if (msg !== undefined) {
      this.#read++;
      this.#waiter = null;
      w.resolve(msg);
    } else if (this.#over) {
      this.#waiter = null;
      w.reject(new Error(`the client closed the connection; it sent ${this.received.map((m) => m.type).join(',')}`));
    }
  }

  /** The next message the client sent that the script has not read yet. */
  next(): Promise<Message> {
    this.#waiter = deferred<Message>();
    const p = this.#waiter.promise;
    this.#wake();
    return p;
  }

  /** The next message, which must be of `type`. */
  async expect<T extends Message['type']>(type: T): Promise<Extract<Message, { type: T }>> {
    const msg = await this.next();
    if (msg.type !== type) throw new Error(`the client sent type ${msg.type} where ${type} was expected`);
    return msg as Extract<Message, { type: T }>;
  }

  send(msg: Outgoing): void {
    this.stream.write(encodeMessage(msg));
  }

  welcome(agency: number, next = 0, finished = false): void {
    this.send({ type: MessageType.WELCOME, agency, next, finished });
  }

  stored(batch: { first: number; count: number }): void {
    this.send({ type: MessageType.BATCH_ACK, first: batch.first, status: AckStatus.STORED, count: batch.count });
  }

  /** Reads HELLO (checking the agency), sends a CHALLENGE, reads the PROOF, and answers WELCOME with `next`. */
  async accept(agency: number, next = 0, finished = false): Promise<void> {
    const hello = await this.expect(MessageType.HELLO);
    if (hello.agency !== agency) throw new Error(`HELLO for agency ${hello.agency}, expected ${agency}`);
    this.send({ type: MessageType.CHALLENGE, nonce: randomBytes(NONCE_BYTES) });
    const proof = await this.expect(MessageType.PROOF);
    if (!proof.mac.equals(Buffer.alloc(proof.mac.length))) throw new Error('a client with no key must prove with 32 zero bytes');
    this.welcome(agency, next, finished);
  }

  /** Acknowledges every batch as STORED until FINISHED, which gets FINISHED_ACK; returns the bets received. */
  async storeUntilFinished(finished = 1, expected = 1): Promise<number> {
    let bets = 0;
    for (;;) {
      const msg = await this.next();
      if (msg.type === MessageType.FINISHED) break;
      if (msg.type !== MessageType.BATCH) throw new Error(`unexpected message type ${msg.type} while storing`);
      bets += msg.count;
      this.stored(msg);
    }
    this.send({ type: MessageType.FINISHED_ACK, finished, expected });
    return bets;
  }
}

export class FakeServer {
  readonly peers: FakePeer[] = [];
  /** BATCH frames the client has written so far, over every connection. */
  batchesWritten = 0;
  /** Resolves the first time a client write is refused for backpressure (the client then waits for 'drain'). */
  readonly backpressured: Promise<void>;
  readonly #backpressured = deferred();
  readonly #clientEnds: Duplex[] = [];
  #arrival = deferred<FakePeer>();

  constructor() {
    this.backpressured = this.#backpressured.promise;
  }

  /** A Dialer handing the client one end of a fresh duplexPair per attempt. */
  readonly dial: Dialer = async () => {
    const [client, server] = duplexPair();
    const write = client.write.bind(client) as (...args: unknown[]) => boolean;
    client.write = ((chunk: Buffer, ...rest: unknown[]) => {
      if (chunk[0] === MessageType.BATCH) this.batchesWritten++;
      const ok = write(chunk, ...rest);
      if (!ok) this.#backpressured.resolve();
      return ok;
    }) as typeof client.write;
    this.#clientEnds.push(client);
    this.accept(server);
    return client;
  };

  /** Adopts a connection from the client (the server end of a pair, or an accepted socket). */
  accept(stream: Duplex): void {
    const peer = new FakePeer(stream);
    this.peers.push(peer);
    this.#arrival.resolve(peer);
    this.#arrival = deferred<FakePeer>();
  }

  /** The `n`-th connection (0-based), once the client has made it. */
  async peer(n: number): Promise<FakePeer> {
    while (this.peers.length <= n) await this.#arrival.promise;
    return this.peers[n]!;
  }

  /** Destroys both ends of every connection (destroying one end of a pair leaves the other open). */
  close(): void {
    for (const p of this.peers) p.stream.destroy();
    for (const c of this.#clientEnds) c.destroy();
  }
}
