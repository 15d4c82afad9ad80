/**
 * Node's start-up snapshot blob (`node --build-snapshot`) ends with a V8 code cache for each of
 * Node's built-in modules: `SnapshotData::ToBlob` (src/node_snapshotable.cc) writes it last, as
 * a count and then, per module, its id and its cache, each behind a 64-bit length (`size_t`). A
 * start reads the whole blob and copies every entry into Node's built-in loader, which consults
 * an entry only when that module is first required. A module the snapshot already holds is never
 * compiled again, so the build keeps the entries of the modules its program loads after it
 * starts, and no others (tools/bundle.ts; docs/benchmarks.md, fourteenth round).
 *
 * The layout is Node's and not a public format: the cache is recognised only where exactly one
 * offset parses as that vector and ends at the end of the blob, and the build starts the
 * result before it keeps it.
 */

export interface BuiltinCodeCache {
  /** Where the vector starts: its count. */
  offset: number;
  /** Each entry's module id and where the entry starts and ends. */
  entries: { id: string; start: number; end: number }[];
}

const MAX_ENTRIES = 10_000;
const MAX_ID = 256;
const ID = /^[A-Za-z0-9_./-]+$/;

/** A length field: a 64-bit little-endian count that fits in 32 bits, or null. */
function lengthAt(blob: Buffer, at: number): number | null {
  if (at + 8 > blob.length || blob.readUInt32LE(at + 4) !== 0) return null;
  return blob.readUInt32LE(at);
}

/** The vector of entries at `offset` when it parses and ends exactly at the blob's end. */
function vectorAt(blob: Buffer, offset: number): BuiltinCodeCache | null {
  const count = lengthAt(blob, offset);
  if (count === null || count === 0 || count > MAX_ENTRIES) return null;
  const entries: BuiltinCodeCache['entries'] = [];
  let at = offset + 8;
  for (let i = 0; i < count; i++) {
    const start = at;
    const idLength = lengthAt(blob, at);
    if (idLength === null || idLength === 0 || idLength > MAX_ID || at + 8 + idLength > blob.length) return null;
    const id = blob.toString('latin1', at + 8, at + 8 + idLength);
    if (!ID.test(id)) return null;
    at += 8 + idLength;
    const dataLength = lengthAt(blob, at);
    if (dataLength === null || at + 8 + dataLength > blob.length) return null;
    at += 8 + dataLength;
    entries.push({ id, start, end: at });
  }
  return at === blob.length ? { offset, entries } : null;
}

/**
 * The code cache of Node's built-ins in `blob`; null where no offset, or more than one, parses
 * as it (a blob whose vector is empty, or a layout this code does not know, such as a 32-bit
 * `size_t`).
 */
export function findBuiltinCodeCache(blob: Buffer): BuiltinCodeCache | null {
  let found: BuiltinCodeCache | null = null;
  for (let offset = 0; offset + 8 <= blob.length; offset++) {
    const cache = vectorAt(blob, offset);
    if (cache === null) continue;
    if (found !== null) return null;
    found = cache;
  }
  return found;
}

/** The blob with only the entries of the modules in `keep` (none: an empty vector), or null where none is recognised. */
export function pruneBuiltinCodeCache(blob: Buffer, keep: ReadonlySet<string>): Buffer | null {
  const cache = findBuiltinCodeCache(blob);
  if (cache === null) return null;
  const kept = cache.entries.filter((e) => keep.has(e.id));
  const count = Buffer.alloc(8);
  count.writeUInt32LE(kept.length);
  return Buffer.concat([blob.subarray(0, cache.offset), count, ...kept.map((e) => blob.subarray(e.start, e.end))]);
}
