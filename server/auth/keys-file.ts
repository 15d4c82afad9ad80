/**
 * The server's agency keys: a file named by SERVER_AGENCY_KEYS, one `agency=key` line per
 * agency, `#` comments and blank lines allowed. Every agency 1..SERVER_AGENCIES needs a key;
 * lines for agencies above that are checked and kept (one keys file serves smaller runs).
 * Errors name the file and the line, never the key.
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { AgencyKey, keyProblem } from '../../shared/auth/agency-key.js';
import { ConfigError } from '../../shared/config/values.js';

export const KEYS_VARIABLE = 'SERVER_AGENCY_KEYS';

/** The keys by agency; prints as a count and a path, never as keys. */
export class AgencyKeys {
  readonly path: string;
  readonly #keys: ReadonlyMap<number, AgencyKey>;

  constructor(path: string, keys: ReadonlyMap<number, AgencyKey>) {
    this.path = path;
    this.#keys = keys;
  }

  get(agency: number): AgencyKey | undefined {
    return this.#keys.get(agency);
  }

  get size(): number {
    return this.#keys.size;
  }

  toString(): string {
    return `${this.#keys.size} keys from ${this.path}`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return `AgencyKeys(${this.toString()})`;
  }
}

const LINE = /^([0-9]+)\s*=\s*(.*)$/;

/** Parses the text of a keys file; `source` names it in errors (the path). */
export function parseKeysFile(text: string, agencies: number, source: string): AgencyKeys {
  const keys = new Map<number, AgencyKey>();
  const lineOf = new Map<number, number>();
  const agencyOf = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const fail = (problem: string): ConfigError => new ConfigError(KEYS_VARIABLE, `${source} line ${i + 1}: ${problem}`);
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) throw fail('expected agency=key (an agency number, "=", its key), a # comment or a blank line');
    const agency = Number(m[1]);
    const key = m[2] ?? '';
    if (!Number.isSafeInteger(agency) || agency < 1 || agency > 0xffffffff) throw fail(`agency ${m[1]} is not a valid agency number`);
    const problem = keyProblem(key);
    if (problem !== null) throw fail(`agency ${agency}: ${problem}`);
    const earlier = lineOf.get(agency);
    if (earlier !== undefined) throw fail(`agency ${agency} already has a key on line ${earlier}; keep one line per agency`);
    const twin = agencyOf.get(key);
    if (twin !== undefined)
      throw fail(`agency ${agency} has the same key as agency ${twin}; each agency needs its own key, or one could act for the other`);
    keys.set(agency, AgencyKey.parse(key));
    lineOf.set(agency, i + 1);
    agencyOf.set(key, agency);
  }
  const missing: number[] = [];
  for (let a = 1; a <= agencies && missing.length < 10; a++) if (!keys.has(a)) missing.push(a);
  if (missing.length > 0)
    throw new ConfigError(
      KEYS_VARIABLE,
      `${source} has no key for agency ${missing.join(', ')}${missing.length === 10 ? ', ...' : ''}; every agency 1..${agencies} needs one (make keys AGENCIES=${agencies} adds the missing ones)`,
    );
  return new AgencyKeys(source, keys);
}

export function loadKeysFile(path: string, agencies: number): AgencyKeys {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      KEYS_VARIABLE,
      `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run make keys or point ${KEYS_VARIABLE} at the keys file`,
    );
  }
  return parseKeysFile(text, agencies, path);
}
