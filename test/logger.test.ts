/**
 * The course's text line format (shared/logging/logger.ts): what a value may not hold is
 * rewritten, everything else passes as it is, in the order it was logged.
 */
import { describe, expect, it } from 'vitest';
import { createLogger, formatLine } from '../shared/logging/logger.js';
import { parseLogLine } from '../shared/logging/parse.js';

describe('formatLine', () => {
  it('writes time, level, action, result, then the fields; cleans |, line breaks and ": " out of values', () => {
    const json = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 10, 25, 13, 0, 0, 5),
      action: 'apuesta_invalida',
      result: 'fail',
      archivo: 'data/a|b.csv',
      linea: 17,
      error: 'bad\r\nrow: "x"',
      ratio: 1.5,
      extra: { a: 1 },
      nada: null,
    });
    expect(formatLine(json)).toBe(
      '2026-11-25T13:00:00.005Z WARN  action: apuesta_invalida | result: fail | archivo: data/a/b.csv | linea: 17 | error: bad/row - "x" | ratio: 1.5 | extra: {"a":1} | nada: null\n',
    );
  });

  it('leaves plain values alone, so the graders read them back', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', format: 'text', destination: { write: (l) => lines.push(l) } });
    log.info({ action: 'apuesta_enviada', result: 'success', cantidad: 150, lote: 3, servidor: '127.0.0.1/12345' });
    expect(lines).toHaveLength(1);
    expect(parseLogLine(lines[0]!.trimEnd())).toEqual({
      action: 'apuesta_enviada',
      result: 'success',
      fields: { action: 'apuesta_enviada', result: 'success', cantidad: '150', lote: '3', servidor: '127.0.0.1/12345' },
    });
  });
});
