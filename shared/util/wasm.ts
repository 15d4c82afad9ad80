/**
 * The project's WebAssembly modules (the client's row encoder, the draw's line count, the pool
 * worker's transcoder), each
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

/**
 * This thread's one instance of the module, made by `make` from its exports on the first call;
 * null where Node has no WebAssembly, an answer that is not kept (above).
 */
export function onFirstUse<E, T>(base64: string, make: (exports: E) => T): () => T | null {
  let made: T | null = null;
  return () => {
    if (made !== null) return made;
    const exports = wasmModule(base64)?.instantiate<E>();
    if (exports === undefined) return null;
    made = make(exports);
    return made;
  };
}

/** The values of the module's exported globals `names`: its memory layout (offsets and sizes). */
export function globalsOf<N extends string>(exports: Record<N, { value: number }>, names: readonly N[]): Record<N, number> {
  return Object.fromEntries(names.map((name) => [name, exports[name].value])) as Record<N, number>;
}
