/** Loader hook of module-count.ts: appends `esm URL` for every module loaded. */
import { appendFileSync } from 'node:fs';

let out = '';

export function initialize(data: { out: string }): void {
  out = data.out;
}

type NextLoad = (url: string, context: unknown) => Promise<unknown>;

export async function load(url: string, context: unknown, nextLoad: NextLoad): Promise<unknown> {
  if (out !== '') appendFileSync(out, `esm ${url}\n`);
  return nextLoad(url, context);
}
