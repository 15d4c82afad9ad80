/** Typed reading of configuration values, each failure naming the key and what is expected. */
import { normalizeLevel } from '../logging/logger.js';

export class ConfigError extends Error {
  constructor(key: string, problem: string) {
    super(`${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

/** Exit code for a configuration refused at start. */
export const EXIT_CONFIG = 2;

/** The layering both programs use: a non-empty environment value, else the file's, else the default. */
export function layered(fromEnv: string | undefined, fromFile: unknown, fallback = ''): string {
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return fromFile !== undefined && fromFile !== null ? String(fromFile) : fallback;
}

export function intIn(key: string, raw: unknown, min: number, max: number): number {
  const text = String(raw).trim();
  if (!/^-?[0-9]+$/.test(text))
    throw new ConfigError(key, `${JSON.stringify(String(raw))} is not an integer; use a whole number from ${min} to ${max}`);
  const n = Number(text);
  if (n < min || n > max) throw new ConfigError(key, `${n} is out of range; use a whole number from ${min} to ${max}`);
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/** Durations like `250ms`, `5s`, `2m`, or a plain number of milliseconds. */
export function durationMs(key: string, raw: unknown, max = 3_600_000): number {
  const text = String(raw).trim();
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$/.exec(text);
  if (m === null) throw new ConfigError(key, `${JSON.stringify(text)} is not a duration; write e.g. 500ms, 5s or 2m`);
  const ms = Math.round(Number(m[1]) * (UNITS[m[2] ?? 'ms'] ?? 1));
  if (ms > max) throw new ConfigError(key, `${text} is longer than the maximum of ${max} ms`);
  return ms;
}

/** A switch: `on` or `off` (any case; also true/false, yes/no, 1/0). */
export function onOff(key: string, raw: unknown): boolean {
  const text = String(raw).trim().toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(text)) return true;
  if (['off', 'false', 'no', '0'].includes(text)) return false;
  throw new ConfigError(key, `${JSON.stringify(String(raw))} is not a switch; use on or off`);
}

export function logLevel(key: string, raw: unknown): string {
  const level = normalizeLevel(String(raw));
  if (level === null) throw new ConfigError(key, `${JSON.stringify(String(raw))} is not a log level; use DEBUG, INFO, WARN or ERROR`);
  return level;
}

export function nonEmpty(key: string, raw: unknown): string {
  const text = String(raw ?? '').trim();
  if (text === '') throw new ConfigError(key, 'is empty; give a value');
  return text;
}

/** `host:port`, with an IPv6 host in brackets. */
export function hostPort(key: string, raw: unknown): { host: string; port: number } {
  const text = nonEmpty(key, raw);
  const m = /^(\[[^\]]+\]|[^:]+):([0-9]+)$/.exec(text);
  if (m === null) throw new ConfigError(key, `${JSON.stringify(text)} is not host:port; write e.g. 127.0.0.1:12345 or server:12345`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port: intIn(key, m[2], 1, 65535) };
}

/** Renders a config object as log fields (`key: value`); the logger keeps values free of `|`. */
export function describe(config: object): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(config)) out[k] = typeof v === 'number' ? v : String(v);
  return out;
}
