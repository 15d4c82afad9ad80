/**
 * The retry hint an ERROR BUSY carries in its text ("...; retry in 1500 ms"): written by the
 * server, read back by the client, which waits that long (within its connect timeout) and
 * tries again. One format, written once.
 */
export function withRetryHint(reason: string, retryMs: number): string {
  return `${reason}; retry in ${Math.max(0, Math.round(retryMs))} ms`;
}

/** The hint in an ERROR text, or null when it carries none. */
export function retryHintMs(text: string): number | null {
  const m = /retry in ([0-9]{1,9}) ms/.exec(text);
  return m === null ? null : Number(m[1]);
}
