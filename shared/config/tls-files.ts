/**
 * TLS material read at start: the server's certificate and private key, the client's CA.
 * Each file is read and parsed once, so a missing, unreadable or mismatched file is a
 * configuration error (exit 2) instead of a failure at the first connection. The objects
 * print their paths only, never the PEM text.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { nodeCrypto } from '../util/lazy-builtin.js';
import { ConfigError } from './values.js';

function readPem(key: string, path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(
      key,
      `cannot read the ${what} ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); make certs writes a development one`,
    );
  }
}

function parseCertificate(key: string, path: string, pem: Buffer, now: Date): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new (nodeCrypto().X509Certificate)(pem);
  } catch (err) {
    throw new ConfigError(key, `${path} is not a PEM certificate (${(err as Error).message})`);
  }
  if (new Date(cert.validTo) < now)
    throw new ConfigError(key, `the certificate in ${path} expired on ${cert.validTo}; make a new one (make certs)`);
  return cert;
}

export class ServerTls {
  readonly certPath: string;
  readonly keyPath: string;
  readonly #cert: Buffer;
  readonly #key: Buffer;

  constructor(certPath: string, cert: Buffer, keyPath: string, key: Buffer) {
    this.certPath = certPath;
    this.keyPath = keyPath;
    this.#cert = cert;
    this.#key = key;
  }

  /** For tls.createServer. */
  get options(): { cert: Buffer; key: Buffer } {
    return { cert: this.#cert, key: this.#key };
  }

  toString(): string {
    return `cert ${this.certPath}, key ${this.keyPath}`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspect.custom](): string {
    return `ServerTls(${this.toString()})`;
  }
}

/** Both paths or neither (null: plain TCP); the key must belong to the certificate. */
export function loadServerTls(certPath: string, keyPath: string, now = new Date()): ServerTls | null {
  if (certPath === '' && keyPath === '') return null;
  if (certPath === '')
    throw new ConfigError('SERVER_TLS_CERT', 'is empty but SERVER_TLS_KEY is set; give both (TLS) or neither (plain TCP)');
  if (keyPath === '')
    throw new ConfigError('SERVER_TLS_KEY', 'is empty but SERVER_TLS_CERT is set; give both (TLS) or neither (plain TCP)');
  const certPem = readPem('SERVER_TLS_CERT', certPath, 'certificate');
  const keyPem = readPem('SERVER_TLS_KEY', keyPath, 'private key');
  const cert = parseCertificate('SERVER_TLS_CERT', certPath, certPem, now);
  let key: KeyObject;
  try {
    key = nodeCrypto().createPrivateKey(keyPem);
  } catch (err) {
    throw new ConfigError('SERVER_TLS_KEY', `${keyPath} is not a PEM private key (${(err as Error).message})`);
  }
  if (!cert.checkPrivateKey(key))
    throw new ConfigError(
      'SERVER_TLS_KEY',
      `${keyPath} is not the private key of the certificate ${certPath}; give the pair made together`,
    );
  return new ServerTls(certPath, certPem, keyPath, keyPem);
}

export class ClientTls {
  readonly caPath: string;
  readonly #ca: Buffer;

  constructor(caPath: string, ca: Buffer) {
    this.caPath = caPath;
    this.#ca = ca;
  }

  /** For tls.connect: only this CA is trusted (not the system's). */
  get options(): { ca: Buffer } {
    return { ca: this.#ca };
  }

  toString(): string {
    return `ca ${this.caPath}`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspect.custom](): string {
    return `ClientTls(${this.toString()})`;
  }
}

/** `key` names the setting in errors (CLI_TLS_CA); '' means plain TCP. */
export function loadClientTls(key: string, caPath: string, now = new Date()): ClientTls | null {
  if (caPath === '') return null;
  const pem = readPem(key, caPath, 'CA certificate');
  const cert = parseCertificate(key, caPath, pem, now);
  if (!cert.ca)
    throw new ConfigError(
      key,
      `${caPath} is not a CA certificate (basicConstraints CA:TRUE); give the CA that signed the server's certificate`,
    );
  return new ClientTls(caPath, pem);
}
