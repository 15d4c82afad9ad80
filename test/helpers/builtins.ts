/**
 * A preload (NODE_OPTIONS=--require) that makes a built program report, when it exits, the
 * Node built-in modules it loaded, the files its main thread require()d, the V8 flags it set
 * at run time (v8.setFlagsFromString), which built-ins it loaded after the first of those
 * flags and after the preload itself, and how many threads it has.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface BuiltinsReport {
  /** Built-in module ids, in load order ('net', 'internal/crypto/hash'...). */
  loaded: string[];
  /** Files in the main thread's CommonJS cache at exit (absolute paths), the preload's own included. */
  files: string[];
  /** Arguments of every v8.setFlagsFromString call, in order. */
  flags: string[];
  /** Of `loaded`, those loaded after the first v8.setFlagsFromString call. */
  late: string[];
  /** Of `loaded`, those loaded after this preload ran (a program from a snapshot: beyond what it holds). */
  afterStart: string[];
  /** Threads of the process at exit (/proc/self/task). */
  threads: number;
}

const PRELOAD = `'use strict';
const v8 = require('node:v8');
const { readdirSync, writeFileSync } = require('node:fs');
const set = v8.setFlagsFromString;
const flags = [];
const started = process.moduleLoadList.length;
let mark = -1;
v8.setFlagsFromString = (flag) => {
  if (mark < 0) mark = process.moduleLoadList.length;
  flags.push(flag);
  set(flag);
};
const builtins = (list) => list.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
process.on('exit', () => {
  const loaded = process.moduleLoadList;
  const report = { loaded: builtins(loaded), files: Object.keys(require.cache), flags, late: mark < 0 ? [] : builtins(loaded.slice(mark)), afterStart: builtins(loaded.slice(started)), threads: readdirSync('/proc/self/task').length };
  writeFileSync(process.env.RECORD_BUILTINS, JSON.stringify(report));
});
`;

/** The environment that makes a process under `dir` write its report (`name`), and its reader. */
export async function recordBuiltins(
  dir: string,
  name: string,
): Promise<{ env: Record<string, string>; read: () => Promise<BuiltinsReport> }> {
  const preload = join(dir, 'record-builtins.cjs');
  const out = join(dir, `${name}.builtins.json`);
  await writeFile(preload, PRELOAD);
  return {
    env: { NODE_OPTIONS: `--require ${preload}`, RECORD_BUILTINS: out },
    read: async () => JSON.parse(await readFile(out, 'utf8')) as BuiltinsReport,
  };
}
