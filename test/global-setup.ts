/**
 * Builds dist/ once per `vitest run` exactly as `npm run build` does (tsc, then the entry
 * points bundled by tools/bundle.ts), so the process tests exercise the same files a user
 * runs (`node dist/server/main.cjs`) even on a fresh clone.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export default function setup(): void {
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe', encoding: 'utf8' });
    execFileSync(process.execPath, ['dist/tools/bundle.js'], { cwd: ROOT, stdio: 'pipe', encoding: 'utf8' });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || e.message;
    throw new Error(`global setup: \`npx tsc -p tsconfig.json\` or the bundling failed; dist/ cannot be built:\n${output}`);
  }
}
