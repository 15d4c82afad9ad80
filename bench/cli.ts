/** The bench's command lines: a bad option prints what is wrong and the usage, and exits 2. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseCli<T extends ParseArgsConfig>(name: string, usage: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    usageExit(name, (err as Error).message, usage);
  }
}

export function usageExit(name: string, problem: string, usage: string): never {
  process.stderr.write(`${name}: ${problem}\n${usage}\n`);
  process.exit(2);
}
