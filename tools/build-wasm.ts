/** `npm run build:wasm`: rebuilds the TypeScript modules that carry the project's WebAssembly from wasm/ (tools/lib/wasm.ts). */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { WASM_TARGETS, compileWasm, renderModule } from './lib/wasm.js';

const root = resolve(import.meta.dirname, '..');
for (const target of WASM_TARGETS) {
  const binary = await compileWasm(root, target);
  await writeFile(resolve(root, target.module), renderModule(target, binary));
  console.log(`wrote ${target.module} (${binary.length} bytes of WebAssembly)`);
}
