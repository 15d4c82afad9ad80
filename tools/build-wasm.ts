/** `npm run build:wasm`: rebuilds client/plain-rows-wasm.ts from wasm/plain-rows.ts (tools/lib/wasm.ts). */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { WASM_MODULE, compilePlainRows, renderModule } from './lib/wasm.js';

const root = resolve(import.meta.dirname, '..');
const binary = await compilePlainRows(root);
await writeFile(resolve(root, WASM_MODULE), renderModule(binary));
console.log(`wrote ${WASM_MODULE} (${binary.length} bytes of WebAssembly)`);
