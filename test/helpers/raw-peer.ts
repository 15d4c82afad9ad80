/**
 * A hand-driven protocol peer over a real socket to a server process on 127.0.0.1, for the
 * hostile tests: any bytes out, every reply decoded as it arrives, from a chosen loopback
 * source address (127.0.0.2, ...) when the test needs several "sources".
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { AgencyKey } from '../../shared/auth/agency-key.js';
import { computeProof } from '../../shared/auth/proof.js';
import { FrameDecoder, decodeMessage, encodeMessage } from '../../shared/protocol/codec.js';
import { MessageType, PROTOCOL_VERSION, type Message } from '../../shared/protocol/messages.js';
import { deferred } from '../../shared/util/async.js';

export interface PeerOptions {
  localAddress?: string;
  /** Connect with TLS trusting this CA (from 127.0.0.1). */
  ca?: Buffer;
  /** Give up connecting after this long (a SYN dropped by a full accept queue is retried by the kernel for minutes). */
  timeoutMs?: number;
}

export class RawPeer {
  readonly socket: Socket;
  /** Every message received, in order. */
  readonly received: Message[] = [];
  readonly closed: Promise<void>;
  #isClosed = false;
  #arrived = deferred();
  readonly #decoder = new FrameDecoder();

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of this.#decoder.push(chunk)) this.received.push(decodeMessage(f));
      } catch {
        socket.destroy();
      }
      this.#arrived.resolve();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        this.#arrived.resolve();
        resolve();
      }),
    );
  }

  static open(port: number, opts: PeerOptions = {}): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const { localAddress, ca } = opts;
      const socket = ca === undefined ? connect({ host: '127.0.0.1', port, localAddress }) : tlsConnect({ host: '127.0.0.1', port, ca });
      const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), opts.timeoutMs ?? 30_000);
      socket.once(ca === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        resolve(new RawPeer(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  send(msg: Parameters<typeof encodeMessage>[0]): void {
    this.write(encodeMessage(msg));
  }

  /** The `n`-th message received (0-based), once it is there; null if the connection closes first. */
  async nth(n: number): Promise<Message | null> {
    while (this.received.length <= n) {
      if (this.#isClosed) return null;
      this.#arrived = deferred();
      await this.#arrived.promise;
    }
    return this.received[n]!;
  }

  /** HELLO for `agency`; resolves with the CHALLENGE's nonce. */
  async hello(agency: number, version = PROTOCOL_VERSION): Promise<Buffer> {
    const at = this.received.length;
    this.send({ type: MessageType.HELLO, version, agency });
    const reply = await this.nth(at);
    if (reply?.type !== MessageType.CHALLENGE) throw new Error(`HELLO answered with ${JSON.stringify(reply)}`);
    return reply.nonce;
  }

  /** HELLO, then the PROOF made with `key` for `agency` (or `proveAs`) over the nonce; resolves with the reply. */
  async authenticate(agency: number, key: AgencyKey, proveAs = agency): Promise<Message | null> {
    const nonce = await this.hello(agency);
    const at = this.received.length;
    this.send({ type: MessageType.PROOF, mac: computeProof(key, PROTOCOL_VERSION, proveAs, nonce) });
    return this.nth(at);
  }

  /** Every message until the server closes the connection. */
  async rest(): Promise<Message[]> {
    await this.closed;
    return this.received;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** `[ERROR code]` or the type of a message, for compact expectations. */
export function kind(m: Message | null): string {
  if (m === null) return 'closed';
  const name = Object.entries(MessageType).find(([, v]) => v === m.type)?.[0] ?? String(m.type);
  return m.type === MessageType.ERROR ? `ERROR ${m.code}` : name;
}
