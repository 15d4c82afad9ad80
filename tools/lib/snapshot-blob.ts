/**
 * Node's start-up snapshot blob (`node --build-snapshot`) ends with a V8 code cache for each of
 * Node's built-in modules: `SnapshotData::ToBlob` (src/node_snapshotable.cc) writes it last, as
 * a count and then, per module, its id and its cache, each behind a 64-bit length. A start reads
 * the whole blob and copies every entry into Node's built-in loader, which consults an entry only
 * when that module is first required. A module the snapshot already holds is never compiled
 * again, and the client's snapshot holds every module its run loads; a module first required
 * later (TLS's) compiles from its source (docs/benchmarks.md, fourteenth round).
 *
 * The layout is Node's and not a public format: the cache is recognised only where exactly one
 * offset parses as that vector and ends at the end of the blob, and the build starts the
 * result before it keeps it (tools/bundle.ts).
 */

/** Where the code cache starts and the module ids it holds; null where no one such vector is found. */
export interface BuiltinCodeCache {
  offset: number;
  ids: string[];
}

const MAX_ENTRIES = 10_000;
const MAX_ID = 256;
const ID = /^[A-Za-z0-9_./-]+$/;

/** A length field: a 64-bit little-endian count that fits in 32 bits, or null. */
function lengthAt(blob: Buffer, at: number): number | null {
  if (at + 8 > blob.length || blob.readUInt32LE(at + 4) !== 0) return null;
  return blob.readUInt32LE(at);
}

/** The ids of the vector of entries at `offset` when it parses and ends exactly at the blob's end. */
function idsAt(blob: Buffer, offset: number): string[] | null {
  const count = lengthAt(blob, offset);
  if (count === null || count === 0 || count > MAX_ENTRIES) return null;
  const ids: string[] = [];
  let at = offset + 8;
  for (let i = 0; i < count; i++) {
    const idLength = lengthAt(blob, at);
    if (idLength === null || idLength === 0 || idLength > MAX_ID || at + 8 + idLength > blob.length) return null;
    const id = blob.toString('latin1', at + 8, at + 8 + idLength);
    if (!ID.test(id)) return null;
    ids.push(id);
    at += 8 + idLength;
    const dataLength = lengthAt(blob, at);
    if (dataLength === null || at + 8 + dataLength > blob.length) return null;
    at += 8 + dataLength;
  }
  return at === blob.length ? ids : null;
}

export function findBuiltinCodeCache(blob: Buffer): BuiltinCodeCache | null {
  let found: BuiltinCodeCache | null = null;
  for (let offset = 0; offset + 8 <= blob.length; offset++) {
    const ids = idsAt(blob, offset);
    if (ids === null) continue;
    if (found !== null) return null;
    found = { offset, ids };
  }
  return found;
}

/** The blob with an empty code cache (a count of zero in place of the vector), or null where none is recognised. */
export function withoutBuiltinCodeCache(blob: Buffer): Buffer | null {
  const cache = findBuiltinCodeCache(blob);
  if (cache === null) return null;
  return Buffer.concat([blob.subarray(0, cache.offset), Buffer.alloc(8)]);
}
