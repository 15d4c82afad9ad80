/**
 * The project's WebAssembly modules (the client's row encoder, the draw's line count), each
 * compiled on first use, once per thread. null where Node has no WebAssembly (`--jitless`, the
 * start-up snapshot builder): the caller then takes its JavaScript path. That answer is never
 * kept, so a program deserialised from a snapshot compiles its module on its first run.
 */

/** The part of the WebAssembly API used here (the project's lib settings do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer };
  Instance: new (module: object, imports: object) => { exports: unknown };
}

export interface WasmModule {
  /** A new instance; its exports as the module's source declares them. */
  instantiate<E>(imports?: object): E;
  /** A memory of `pages` pages of 64 KiB that never grows, to import. */
  memory(pages: number): { buffer: ArrayBuffer };
}

const compiled = new Map<string, WasmModule>();

/** The module whose binary is `base64` (as tools/lib/wasm.ts renders it). */
export function wasmModule(base64: string): WasmModule | null {
  const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (api === undefined) return null;
  let module = compiled.get(base64);
  if (module === undefined) {
    const binary = new api.Module(Buffer.from(base64, 'base64'));
    module = {
      instantiate: <E>(imports: object = {}) => new api.Instance(binary, imports).exports as E,
      memory: (pages) => new api.Memory({ initial: pages, maximum: pages }),
    };
    compiled.set(base64, module);
  }
  return module;
}
