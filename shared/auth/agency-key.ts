/**
 * An agency's secret key as both programs hold it. The HMAC key is the key's text as written
 * (its ASCII bytes; 64 hex digits are used as 64 bytes, not decoded). The bytes stay in a
 * #private field and every way of printing the object (String, JSON, util.inspect) shows
 * "[redacted]", so a config object logged whole never leaks a key.
 */
import { inspect } from 'node:util';

export const MIN_KEY_LENGTH = 32;
export const MAX_KEY_LENGTH = 1024;

/** Why `text` is not a usable key, or null: at least 32 characters of printable ASCII, no spaces. */
export function keyProblem(text: string): string | null {
  if (text.length < MIN_KEY_LENGTH)
    return `the key is ${text.length} characters long; use at least ${MIN_KEY_LENGTH} (make keys writes 64 random hex digits)`;
  if (text.length > MAX_KEY_LENGTH) return `the key is ${text.length} characters long; use at most ${MAX_KEY_LENGTH}`;
  const bad = /[^\x21-\x7e]/.exec(text);
  if (bad !== null)
    return `character ${bad.index + 1} of the key is not printable ASCII (space and control characters are not allowed either)`;
  return null;
}

export class AgencyKey {
  readonly #bytes: Buffer;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** The key, or an Error naming the problem (callers wrap it with where the key came from). */
  static parse(text: string): AgencyKey {
    const problem = keyProblem(text);
    if (problem !== null) throw new Error(problem);
    return new AgencyKey(Buffer.from(text, 'ascii'));
  }

  /** The HMAC key bytes; only proof.ts should need them. */
  get bytes(): Buffer {
    return this.#bytes;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'AgencyKey [redacted]';
  }
}
