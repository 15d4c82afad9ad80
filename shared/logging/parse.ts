/** Reads log lines the way the course's graders do: split on `|`, value after the last `:`. */
export interface LogLine {
  action: string;
  result: string;
  fields: Record<string, string>;
}

export function parseLogLine(line: string): LogLine | null {
  const fields: Record<string, string> = {};
  for (const part of line.split('|')) {
    const colon = part.lastIndexOf(':');
    if (colon < 0) continue;
    const key = part.slice(0, colon).trim().split(/\s+/).pop() ?? '';
    fields[key] = part.slice(colon + 1).trim();
  }
  const { action, result } = fields;
  if (action === undefined || result === undefined) return null;
  return { action, result, fields };
}
