/**
 * Where keys and TLS material come from: the server's keys file, the client's key, the TLS
 * files, `gen-keys` and `make-certs` (real files, real openssl, the built tool as a process).
 * A key never appears in an error, a log or a printed config.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClientConfig, readKeyFile } from '../client/config.js';
import { parseKeysFile, loadKeysFile } from '../server/auth/keys-file.js';
import { loadServerConfig } from '../server/config.js';
import { computeProof } from '../shared/auth/proof.js';
import { loadClientTls, loadServerTls } from '../shared/config/tls-files.js';
import { ConfigError, describe as describeConfig } from '../shared/config/values.js';
import { genKeys } from '../tools/gen-keys.js';
import { CLIENT_YAML, ROOT, SERVER_INI, makeTempDir, removeDir } from './helpers/processes.js';

const run = promisify(execFile);
const K1 = 'a1'.repeat(32);
const K2 = 'b2'.repeat(32);
const K3 = `${'Z'.repeat(20)}!#$%&()*+,-./:;<=>?@[]^_{|}~`;
let dir: string;

beforeAll(async () => {
  dir = await makeTempDir('auth-config');
});
afterAll(() => removeDir(dir));

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError `fn` throws, checked to name `key` and never to quote a key. */
function refusal(fn: () => unknown, key: string): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const message = (caught as Error).message;
  expect(message.startsWith(`${key}: `)).toBe(true);
  for (const k of [K1, K2, K3, 'short-key-abc']) expect(message).not.toContain(k);
  return message;
}

describe('the server keys file', () => {
  it('takes agency=key lines with comments, blank lines, CRLF, a BOM and spaces around =', () => {
    const keys = parseKeysFile(`\uFEFF# keys\r\n\r\n1=${K1}\r\n  2 = ${K2}  \r\n# three\r\n3=${K3}\r\n`, 3, 'k');
    const nonce = Buffer.alloc(32, 7);
    expect(keys.size).toBe(3);
    // same proofs as keys made from the texts: the file's bytes are the keys
    expect(computeProof(keys.get(2)!, 2, 2, nonce)).toEqual(computeProof(readKeyFile(write('k2', K2)), 2, 2, nonce));
    expect(keys.get(4)).toBeUndefined();
  });

  it('keeps keys of agencies above SERVER_AGENCIES (one file serves smaller runs) but needs every agency up to it', () => {
    expect(parseKeysFile(`1=${K1}\n2=${K2}\n`, 1, 'k').size).toBe(2);
    expect(refusal(() => parseKeysFile(`2=${K2}\n`, 3, 'f.keys'), 'SERVER_AGENCY_KEYS')).toMatch(
      /f\.keys has no key for agency 1, 3; every agency 1\.\.3 needs one/,
    );
  });

  it.each([
    [`1=${K1}\nagency two\n`, /line 2: expected agency=key/],
    [`1=${K1}\n=${K2}\n`, /line 2: expected agency=key/],
    [`# c\n1=short-key-abc\n`, /line 2: agency 1: the key is 13 characters long; use at least 32/],
    [`1=${K1}\n2=${K2.slice(0, 40)} ${K2.slice(40)}\n`, /line 2: agency 2: character 41 of the key is not printable ASCII/],
    [`0=${K1}\n`, /line 1: agency 0 is not a valid agency number/],
    [`1=${K1}\n\n1=${K2}\n`, /line 3: agency 1 already has a key on line 1/],
    [`1=${K1}\n2=${K1}\n`, /line 2: agency 2 has the same key as agency 1/],
    [`1=\n`, /line 1: agency 1: the key is 0 characters long/],
  ])('refuses %j naming the line, not the key', (text, why) => {
    expect(refusal(() => parseKeysFile(text, 1, 'k'), 'SERVER_AGENCY_KEYS')).toMatch(why);
  });

  it('names an unreadable file and what to do', () => {
    const missing = join(dir, 'none.keys');
    expect(refusal(() => loadKeysFile(missing, 1), 'SERVER_AGENCY_KEYS')).toMatch(
      new RegExp(`cannot read ${missing} \\(ENOENT\\); run make keys`),
    );
  });
});

describe('loadServerConfig: auth, limits and TLS', () => {
  const ini = { SERVER_CONFIG: SERVER_INI };

  it('is secure by default: no keys file, no start, unless SERVER_AUTH=off', () => {
    expect(refusal(() => loadServerConfig(ini), 'SERVER_AGENCY_KEYS')).toMatch(/is empty but SERVER_AUTH is on; .*SERVER_AUTH=off/);
    expect(loadServerConfig({ ...ini, SERVER_AUTH: 'off' })).toMatchObject({ auth: 'off', agencyKeys: null });
    expect(refusal(() => loadServerConfig({ ...ini, SERVER_AUTH: 'maybe' }), 'SERVER_AUTH')).toMatch(/is not a switch; use on or off/);
  });

  it('loads the keys and the limits, and prints the keys as a count and a path', () => {
    const path = write('ok.keys', `1=${K1}\n2=${K2}\n`);
    const c = loadServerConfig({ ...ini, SERVER_AGENCIES: '2', SERVER_AGENCY_KEYS: path });
    expect(c).toMatchObject({
      auth: 'on',
      authTimeoutMs: 5000,
      idleTimeoutMs: 60_000,
      maxUnauthenticated: 128,
      maxUnauthenticatedPerSource: 16,
      tls: null,
    });
    expect(c.agencyKeys?.size).toBe(2);
    const printed = JSON.stringify(describeConfig(c)) + JSON.stringify(c) + String(c.agencyKeys);
    expect(printed).toContain(`2 keys from ${path}`);
    for (const k of [K1, K2]) expect(printed).not.toContain(k);
  });

  it.each([
    ['SERVER_AUTH_TIMEOUT', '50ms', /too short/],
    ['SERVER_AUTH_TIMEOUT', '2m', /longer than the maximum/],
    ['SERVER_IDLE_TIMEOUT', 'never', /not a duration/],
    ['SERVER_MAX_UNAUTHENTICATED', '0', /out of range/],
    ['SERVER_MAX_UNAUTHENTICATED_PER_SOURCE', '129', /out of range; use a whole number from 1 to 128/],
  ])('refuses %s=%s', (key, value, why) => {
    expect(refusal(() => loadServerConfig({ ...ini, SERVER_AUTH: 'off', [key]: value }), key)).toMatch(why);
  });
});

describe('the client key', () => {
  const base = { CLI_CONFIG: CLIENT_YAML };

  it('is none by default, taken from CLI_KEY, or from the file CLI_KEY_FILE, never printed', () => {
    expect(loadClientConfig(base).key).toBeNull();
    const nonce = Buffer.alloc(32, 1);
    const inline = loadClientConfig({ ...base, CLI_KEY: K1 }).key!;
    const fromFile = loadClientConfig({ ...base, CLI_KEY_FILE: write('a1.key', `# agency 1\n\n${K1}\n`) });
    expect(computeProof(fromFile.key!, 2, 1, nonce)).toEqual(computeProof(inline, 2, 1, nonce));
    expect(JSON.stringify(describeConfig(fromFile)) + JSON.stringify(fromFile)).not.toContain(K1);
  });

  it('reads auth.keyFile and tls.ca from the YAML, CLI_KEY overriding the file', () => {
    const keyPath = write('y.key', `${K2}\n`);
    const yaml = write('client.yaml', `id: 2\nauth:\n  keyFile: "${keyPath}"\n`);
    const nonce = Buffer.alloc(32, 2);
    const fromYaml = loadClientConfig({ CLI_CONFIG: yaml }).key!;
    expect(computeProof(fromYaml, 2, 2, nonce)).toEqual(computeProof(readKeyFile(keyPath), 2, 2, nonce));
    const inline = loadClientConfig({ CLI_CONFIG: yaml, CLI_KEY: K1 }).key!;
    expect(computeProof(inline, 2, 2, nonce)).not.toEqual(computeProof(fromYaml, 2, 2, nonce));
  });

  it.each([
    [{ CLI_KEY: 'short-key-abc' }, 'CLI_KEY', /13 characters long; use at least 32/],
    [{ CLI_KEY: K1, CLI_KEY_FILE: 'x.key' }, 'CLI_KEY', /both set/],
    [{ CLI_KEY_FILE: '/nonexistent/a.key' }, 'CLI_KEY_FILE', /cannot read \/nonexistent\/a\.key \(ENOENT\)/],
  ])('refuses %j', (env, key, why) => {
    expect(refusal(() => loadClientConfig({ ...base, ...env }), key)).toMatch(why);
  });

  it.each([
    ['two.key', `${K1}\n# and\n${K2}\n`, /two\.key line 3: a second key \(the first is on line 1\)/],
    ['empty.key', '# nothing\n\n', /empty\.key holds no key/],
    ['short.key', '\nshort-key-abc\n', /short\.key line 2: the key is 13 characters long/],
  ])('refuses a key file %s naming the line', (name, text, why) => {
    expect(refusal(() => loadClientConfig({ ...base, CLI_KEY_FILE: write(name, text) }), 'CLI_KEY_FILE')).toMatch(why);
  });
});

describe('gen-keys', () => {
  const mode = (p: string): number => statSync(p).mode & 0o777;

  it('creates a server file and one file per agency, 64 random hex digits, mode 0600, that agree', () => {
    const out = join(dir, 'keys-a');
    expect(genKeys(3, out)).toEqual({ created: [1, 2, 3], reused: [] });
    expect(readdirSync(out).sort()).toEqual(['agencies.keys', 'agency-1.key', 'agency-2.key', 'agency-3.key']);
    expect(mode(out)).toBe(0o700);
    const server = loadKeysFile(join(out, 'agencies.keys'), 3);
    const nonce = Buffer.alloc(32, 3);
    const texts = new Set<string>();
    for (const a of [1, 2, 3]) {
      const path = join(out, `agency-${a}.key`);
      const text = readFileSync(path, 'utf8');
      expect(text).toMatch(/^[0-9a-f]{64}\n$/);
      texts.add(text);
      expect(mode(path)).toBe(0o600);
      expect(computeProof(server.get(a)!, 2, a, nonce)).toEqual(computeProof(readKeyFile(path), 2, a, nonce));
    }
    expect(texts.size).toBe(3);
    expect(mode(join(out, 'agencies.keys'))).toBe(0o600);
  });

  it('never overwrites: a second run keeps every byte, a larger one only appends, a lone client key is reused', () => {
    const out = join(dir, 'keys-b');
    genKeys(2, out);
    const before = readFileSync(join(out, 'agencies.keys'), 'utf8');
    const one = readFileSync(join(out, 'agency-1.key'), 'utf8');
    expect(genKeys(2, out)).toEqual({ created: [], reused: [1, 2] });
    expect(readFileSync(join(out, 'agencies.keys'), 'utf8')).toBe(before);
    writeFileSync(join(out, 'agency-4.key'), `${K3}\n`, { mode: 0o600 });
    expect(genKeys(4, out)).toEqual({ created: [3], reused: [1, 2, 4] });
    const after = readFileSync(join(out, 'agencies.keys'), 'utf8');
    expect(after.startsWith(before)).toBe(true);
    expect(after.slice(before.length)).toMatch(new RegExp(`^3=[0-9a-f]{64}\\n4=${K3.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`));
    expect(readFileSync(join(out, 'agency-1.key'), 'utf8')).toBe(one);
  });

  it('refuses when the two files disagree on a key, or a key file is malformed', () => {
    const out = join(dir, 'keys-c');
    genKeys(1, out);
    writeFileSync(join(out, 'agency-1.key'), `${K1}\n`);
    expect(() => genKeys(1, out)).toThrow(/agency-1\.key and .*agencies\.keys hold different keys for agency 1/);
    writeFileSync(join(out, 'agency-1.key'), 'short-key-abc\n');
    expect(() => genKeys(1, out)).toThrow(/agency-1\.key line 1: the key is 13 characters long/);
  });

  it("gives the files it creates to --owner (the containers' user), keeping mode 0600", async () => {
    const out = join(dir, 'keys-owned');
    await run(process.execPath, ['dist/tools/gen-keys.js', '--agencies', '1', '--out', out, '--owner', '1000:1000'], { cwd: ROOT });
    for (const f of ['agencies.keys', 'agency-1.key']) {
      const st = statSync(join(out, f));
      if (process.getuid?.() === 0) expect([st.uid, st.gid]).toEqual([1000, 1000]);
      expect(st.mode & 0o777).toBe(0o600);
    }
  });

  it('runs as `node dist/tools/gen-keys.js` without printing a key', async () => {
    const out = join(dir, 'keys-d');
    const { stdout, stderr } = await run(process.execPath, ['dist/tools/gen-keys.js', '--agencies', '2', '--out', out], { cwd: ROOT });
    expect(stdout).toContain(`keys in ${out}/: 2 created (agency 1, 2), 0 kept`);
    for (const a of [1, 2]) expect(stdout + stderr).not.toContain(readFileSync(join(out, `agency-${a}.key`), 'utf8').trim());
  });
});

describe('TLS files (make-certs.sh with the real openssl)', () => {
  let certs: string;
  beforeAll(async () => {
    certs = join(dir, 'certs');
    await run('bash', [join(ROOT, 'tools/make-certs.sh'), certs]);
  });
  const p = (name: string): string => join(certs, name);

  it('makes a CA and a server certificate the loaders accept, keys mode 0600', () => {
    expect(statSync(p('server.key')).mode & 0o777).toBe(0o600);
    const server = loadServerTls(p('server.crt'), p('server.key'))!;
    expect(String(server)).toBe(`cert ${p('server.crt')}, key ${p('server.key')}`);
    expect(JSON.stringify(server)).not.toContain('PRIVATE');
    expect(loadClientTls('CLI_TLS_CA', p('ca.crt'))?.caPath).toBe(p('ca.crt'));
    const c = loadServerConfig({
      SERVER_CONFIG: SERVER_INI,
      SERVER_AUTH: 'off',
      SERVER_TLS_CERT: p('server.crt'),
      SERVER_TLS_KEY: p('server.key'),
    });
    expect(c.tls?.certPath).toBe(p('server.crt'));
    expect(loadClientConfig({ CLI_CONFIG: CLIENT_YAML, CLI_TLS_CA: p('ca.crt') }).tls?.caPath).toBe(p('ca.crt'));
  });

  it('keeps existing files on a second run', async () => {
    const before = readFileSync(p('server.crt'), 'utf8');
    const { stdout } = await run('bash', [join(ROOT, 'tools/make-certs.sh'), certs]);
    expect(stdout).toMatch(/already exist \(kept\)/);
    expect(readFileSync(p('server.crt'), 'utf8')).toBe(before);
  });

  it.each([
    ['only the certificate', () => loadServerTls(p('server.crt'), ''), 'SERVER_TLS_KEY', /give both/],
    ['only the key', () => loadServerTls('', p('server.key')), 'SERVER_TLS_CERT', /give both/],
    [
      'a missing certificate',
      () => loadServerTls(join(dir, 'no.crt'), p('server.key')),
      'SERVER_TLS_CERT',
      /cannot read the certificate .*ENOENT/,
    ],
    [
      "a key that is not the certificate's",
      () => loadServerTls(p('server.crt'), p('ca.key')),
      'SERVER_TLS_KEY',
      /is not the private key of the certificate/,
    ],
    ['a key file as the certificate', () => loadServerTls(p('server.key'), p('server.key')), 'SERVER_TLS_CERT', /is not a PEM certificate/],
    [
      'an expired certificate',
      () => loadServerTls(p('server.crt'), p('server.key'), new Date('2999-01-01')),
      'SERVER_TLS_CERT',
      /expired on/,
    ],
    ['a server certificate as the CA', () => loadClientTls('CLI_TLS_CA', p('server.crt')), 'CLI_TLS_CA', /is not a CA certificate/],
    ['a missing CA', () => loadClientTls('CLI_TLS_CA', join(dir, 'no-ca.crt')), 'CLI_TLS_CA', /cannot read the CA certificate/],
  ])('refuses %s', (_, load, key, why) => {
    expect(refusal(load, key)).toMatch(why);
  });
});
