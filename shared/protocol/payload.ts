import { MalformedMessageError } from './errors.js';

/** Bounds-checked reads over one payload; every overrun is a MalformedMessageError. */
export class PayloadReader {
  #buf: Buffer;
  #pos = 0;
  constructor(buf: Buffer) {
    this.#buf = buf;
  }
  get offset(): number {
    return this.#pos;
  }
  get remaining(): number {
    return this.#buf.length - this.#pos;
  }
  #need(n: number, what: string): void {
    if (this.#pos + n > this.#buf.length) {
      throw new MalformedMessageError(`${what} needs ${n} bytes at offset ${this.#pos}, only ${this.remaining} left`);
    }
  }
  u8(what: string): number {
    this.#need(1, what);
    return this.#buf.readUInt8(this.#pos++);
  }
  u16(what: string): number {
    this.#need(2, what);
    const v = this.#buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }
  u32(what: string): number {
    this.#need(4, what);
    const v = this.#buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }
  /** A string with a u8 (short) or u16 (long) byte-length prefix. */
  str8(what: string): string {
    return this.#str(this.u8(what), what);
  }
  str16(what: string): string {
    return this.#str(this.u16(what), what);
  }
  /** Exactly `n` raw bytes, copied (the payload is a view of a socket chunk). */
  bytes(n: number, what: string): Buffer {
    this.#need(n, what);
    const b = Buffer.from(this.#buf.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return b;
  }
  rest(): Buffer {
    const b = this.#buf.subarray(this.#pos);
    this.#pos = this.#buf.length;
    return b;
  }
  end(what: string): void {
    if (this.remaining !== 0) throw new MalformedMessageError(`${this.remaining} unexpected trailing bytes after ${what}`);
  }
  #str(len: number, what: string): string {
    this.#need(len, what);
    const s = this.#buf.toString('utf8', this.#pos, this.#pos + len);
    this.#pos += len;
    return s;
  }
}

/** Writes into a fixed buffer; callers size it first (see sizes in codec.ts). */
export class PayloadWriter {
  readonly buf: Buffer;
  #pos: number;
  constructor(size: number, start = 0) {
    this.buf = Buffer.allocUnsafe(size);
    this.#pos = start;
  }
  get offset(): number {
    return this.#pos;
  }
  u8(v: number): this {
    this.buf.writeUInt8(v, this.#pos);
    this.#pos += 1;
    return this;
  }
  u16(v: number): this {
    this.buf.writeUInt16BE(v, this.#pos);
    this.#pos += 2;
    return this;
  }
  u32(v: number): this {
    this.buf.writeUInt32BE(v, this.#pos);
    this.#pos += 4;
    return this;
  }
  str8(s: string): this {
    return this.#str(s, 1);
  }
  str16(s: string): this {
    return this.#str(s, 2);
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.#pos);
    this.#pos += b.length;
    return this;
  }
  #str(s: string, prefix: 1 | 2): this {
    const len = this.buf.write(s, this.#pos + prefix, 'utf8');
    if (prefix === 1) this.buf.writeUInt8(len, this.#pos);
    else this.buf.writeUInt16BE(len, this.#pos);
    this.#pos += prefix + len;
    return this;
  }
}
