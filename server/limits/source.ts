/**
 * The "source" the per-source limits count: an IPv4 address, or the /64 prefix of an IPv6
 * address (one host usually owns a whole /64, so counting single IPv6 addresses would give
 * it 2^64 budgets). IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as the IPv4 address.
 */
import { isIPv4, isIPv6 } from 'node:net';

export function sourceOf(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address.split('%')[0]!).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, in lower-case hex without leading zeros. */
function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const part = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  const zeros = Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...zeros, ...right].map((g) => (g.includes('.') ? g : Number.parseInt(g, 16).toString(16)));
}
