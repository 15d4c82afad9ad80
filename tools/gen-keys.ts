/**
 * `make keys` / `npm run gen-keys -- --agencies N --out keys`: the agencies' secret keys.
 * Writes, when missing, `<out>/agency-<N>.key` (one key, for the client: CLI_KEY_FILE) and the
 * server's `<out>/agencies.keys` (one `agency=key` line each: SERVER_AGENCY_KEYS). A key is 64
 * random hex digits; files are created with mode 0600 in a folder of mode 0700. Existing keys
 * are never overwritten: a key already in either file is reused for the other, lines are only
 * appended to agencies.keys, and the two files disagreeing on a key is an error to fix by hand.
 * Prints what it did, never a key.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readKeyFile } from '../client/config.js';
import { parseKeysFile } from '../server/auth/keys-file.js';
import { isEntryPoint } from './lib/entry-point.js';

export const SERVER_KEYS_FILE = 'agencies.keys';
export const agencyKeyFile = (agency: number): string => `agency-${agency}.key`;

const HEADER = '# agency=key, one line per agency (SERVER_AGENCY_KEYS). Secret: never commit or log it.\n';

export interface GenKeysResult {
  created: number[];
  reused: number[];
}

/** Reads the key text of every agency already in the server file (validated, then as text). */
function serverFileKeys(path: string): Map<number, string> {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  parseKeysFile(text, 0, path);
  const keys = new Map<number, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([0-9]+)\s*=\s*(\S+)\s*$/.exec(line);
    if (m !== null) keys.set(Number(m[1]), m[2]!);
  }
  return keys;
}

function clientFileKey(path: string): string | null {
  if (!existsSync(path)) return null;
  return readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'))!;
}

/**
 * `owner` (uid, gid): who must read the files, e.g. the containers' `node` user (1000:1000) when
 * compose mounts them; the files this run creates get that owner (they stay mode 0600).
 */
export function genKeys(agencies: number, out: string, owner?: { uid: number; gid: number }): GenKeysResult {
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const serverPath = join(out, SERVER_KEYS_FILE);
  const inServer = serverFileKeys(serverPath);
  const result: GenKeysResult = { created: [], reused: [] };
  const lines: string[] = [];
  for (let agency = 1; agency <= agencies; agency++) {
    const clientPath = join(out, agencyKeyFile(agency));
    if (existsSync(clientPath)) readKeyFile(clientPath); // validates, naming the file and line
    const fromClient = clientFileKey(clientPath);
    const fromServer = inServer.get(agency) ?? null;
    if (fromClient !== null && fromServer !== null && fromClient !== fromServer)
      throw new Error(
        `${clientPath} and ${serverPath} hold different keys for agency ${agency}; delete the wrong one (or both, to make a new key) and run again`,
      );
    const key = fromClient ?? fromServer ?? randomBytes(32).toString('hex');
    (fromClient ?? fromServer) === null ? result.created.push(agency) : result.reused.push(agency);
    if (fromClient === null) {
      writeFileSync(clientPath, `${key}\n`, { mode: 0o600, flag: 'wx' });
      if (owner !== undefined) giveTo(clientPath, owner);
    }
    if (fromServer === null) lines.push(`${agency}=${key}\n`);
  }
  if (lines.length > 0) {
    const fresh = !existsSync(serverPath);
    appendFileSync(serverPath, (fresh ? HEADER : '') + lines.join(''), { mode: 0o600 });
    if (fresh) chmodSync(serverPath, 0o600);
    if (owner !== undefined) giveTo(serverPath, owner);
  }
  return result;
}

function main(): void {
  const { values } = parseArgs({
    options: { agencies: { type: 'string', default: '5' }, out: { type: 'string', default: 'keys' }, owner: { type: 'string' } },
  });
  const agencies = Number(values.agencies);
  if (!Number.isInteger(agencies) || agencies < 1 || agencies > 100_000)
    throw new Error(`--agencies must be a whole number from 1 to 100000, got ${values.agencies}`);
  const owner = values.owner === undefined ? undefined : parseOwner(values.owner);
  const { created, reused } = genKeys(agencies, values.out, owner);
  console.log(
    `keys in ${values.out}/: ${created.length} created${created.length > 0 ? ` (agency ${created.join(', ')})` : ''}, ${reused.length} kept; server: ${join(values.out, SERVER_KEYS_FILE)}, agency N: ${join(values.out, 'agency-N.key')}`,
  );
}

function giveTo(path: string, owner: { uid: number; gid: number }): void {
  try {
    chownSync(path, owner.uid, owner.gid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new Error(`cannot give ${path} to uid ${owner.uid} (${code}): run it as root, or as the user ${owner.uid}`);
  }
}

function parseOwner(text: string): { uid: number; gid: number } {
  const m = /^([0-9]+)(?::([0-9]+))?$/.exec(text);
  if (m === null) throw new Error(`--owner must be UID or UID:GID (e.g. 1000:1000, the containers' node user), got ${text}`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

if (isEntryPoint(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error(`gen-keys: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
