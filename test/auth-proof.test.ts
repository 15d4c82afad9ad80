/**
 * The HMAC proof of protocol version 2 and the key wrapper. Expected MACs come from
 * `openssl dgst -sha256 -mac HMAC` (a literal) and from createHmac over hand-built bytes.
 */
import { createHmac } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AgencyKey, keyProblem } from '../shared/auth/agency-key.js';
import { NO_KEY_PROOF, computeProof, newNonce, verifyProof } from '../shared/auth/proof.js';

const KEY_TEXT = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
const KEY = AgencyKey.parse(KEY_TEXT);
const NONCE = Buffer.from(Array.from({ length: 32 }, (_, i) => i));

/** The message bytes written out by hand: label, version u16 BE, agency u32 BE, nonce. */
function byHand(key: string, version: number, agency: number, nonce: Buffer): Buffer {
  const bytes = Buffer.concat([
    Buffer.from('loteria-proof-v2', 'ascii'),
    Buffer.from([version >> 8, version & 0xff]),
    Buffer.from([(agency >>> 24) & 0xff, (agency >>> 16) & 0xff, (agency >>> 8) & 0xff, agency & 0xff]),
    nonce,
  ]);
  return createHmac('sha256', Buffer.from(key, 'ascii')).update(bytes).digest();
}

describe('computeProof', () => {
  it('matches the MAC openssl computes for version 2, agency 3, nonce 00..1f', () => {
    // printf 'loteria-proof-v2\x00\x02\x00\x00\x00\x03' + bytes 0..31 | openssl dgst -sha256 -mac HMAC -macopt key:<KEY_TEXT>
    expect(computeProof(KEY, 2, 3, NONCE).toString('hex')).toBe('901046e0e09b9bc424d0a28cad638d0d7f28d96cbd3ede8a61c9b14aad669885');
  });

  it.each([
    [2, 1],
    [2, 0xffffffff],
    [0x1234, 70_000],
  ])('matches HMAC-SHA256 over the hand-built bytes (version %d, agency %d)', (version, agency) => {
    const nonce = newNonce();
    expect(computeProof(KEY, version, agency, nonce)).toEqual(byHand(KEY_TEXT, version, agency, nonce));
  });

  it('gives 32 bytes and refuses a nonce of another size', () => {
    expect(computeProof(KEY, 2, 1, NONCE)).toHaveLength(32);
    expect(() => computeProof(KEY, 2, 1, NONCE.subarray(1))).toThrow(RangeError);
  });
});

describe('verifyProof', () => {
  const mac = byHand(KEY_TEXT, 2, 3, NONCE);
  const other = AgencyKey.parse('f'.repeat(64));

  it('accepts the right proof', () => {
    expect(verifyProof(KEY, 2, 3, NONCE, mac)).toBe(true);
  });

  it.each([
    ['a wrong key', () => verifyProof(other, 2, 3, NONCE, mac)],
    ['another agency', () => verifyProof(KEY, 2, 4, NONCE, mac)],
    ['another version', () => verifyProof(KEY, 1, 3, NONCE, mac)],
    ['another nonce', () => verifyProof(KEY, 2, 3, newNonce(), mac)],
    ['one bit flipped', () => verifyProof(KEY, 2, 3, NONCE, Buffer.from(mac.map((b, i) => (i === 31 ? b ^ 1 : b))))],
    ['a short MAC', () => verifyProof(KEY, 2, 3, NONCE, mac.subarray(0, 31))],
    ['an empty MAC', () => verifyProof(KEY, 2, 3, NONCE, Buffer.alloc(0))],
    ['the no-key proof', () => verifyProof(KEY, 2, 3, NONCE, NO_KEY_PROOF)],
  ])('refuses %s', (_, check) => {
    expect(check()).toBe(false);
  });

  it('draws a fresh nonce each time', () => {
    const a = newNonce();
    expect(a).toHaveLength(32);
    expect(newNonce().equals(a)).toBe(false);
  });
});

describe('AgencyKey', () => {
  it('never prints its bytes', () => {
    const config = { id: 1, key: KEY };
    for (const text of [String(KEY), JSON.stringify(config), inspect(config), `${KEY}`]) {
      expect(text).not.toContain(KEY_TEXT.slice(0, 8));
      expect(text).toContain('redacted');
    }
  });

  it.each([
    ['a'.repeat(31), /31 characters long; use at least 32/],
    [`${'a'.repeat(32)} `, /character 33 .*not printable ASCII/],
    [`${'a'.repeat(10)}\u00e9${'a'.repeat(30)}`, /character 11 .*not printable ASCII/],
    [`${'a'.repeat(40)}\t`, /character 41/],
    ['a'.repeat(1025), /at most 1024/],
  ])('refuses %j', (text, why) => {
    expect(keyProblem(text)).toMatch(why);
    expect(() => AgencyKey.parse(text)).toThrow(why);
  });

  it('takes 32 printable characters, punctuation included', () => {
    expect(keyProblem('!"#$%&\'()*+,-./0123456789:;<=>?@~')).toBeNull();
  });
});
