/** The bench's command lines: a bad option prints what is wrong and the usage, and exits 2. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseCli<T extends ParseArgsConfig>(name: string, usage: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    // A bad command line; anything else is a bug in the options and stays an exception.
    if (!String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw err;
    usageExit(name, (err as Error).message, usage);
  }
}

export function usageExit(name: string, problem: string, usage: string): never {
  process.stderr.write(`${name}: ${problem}\n${usage}\n`);
  process.exit(2);
}

/** A count given in digits (1, 2...), or the usage and exit 2. */
export function countArg(name: string, flag: string, text: string, usage: string): number {
  if (!/^[1-9]\d*$/.test(text)) usageExit(name, `${flag} ${JSON.stringify(text)}: give a whole number >= 1`, usage);
  return Number(text);
}
