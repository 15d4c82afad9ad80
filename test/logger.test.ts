/**
 * The course's text line format (shared/logging/logger.ts): what a value may not hold is
 * rewritten, everything else passes as it is, in the order it was logged.
 */
import fc from 'fast-check';
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

describe('the text logger', () => {
  /** Both formats' lines for the same calls, the text ones and formatLine's of the JSON ones, timestamps cut. */
  function bothWays(calls: (log: ReturnType<typeof createLogger>) => void): { text: string[]; viaJson: string[] } {
    const text: string[] = [];
    const json: string[] = [];
    calls(createLogger({ level: 'debug', format: 'text', destination: { write: (l) => text.push(l) } }));
    calls(createLogger({ level: 'debug', format: 'json', destination: { write: (l) => json.push(l) } }));
    const cut = (l: string): string => l.slice(24);
    return { text: text.map(cut), viaJson: json.map((l) => cut(formatLine(l))) };
  }

  const value = fc.oneof(
    fc.string(),
    fc.constantFrom('a|b', 'x: y', 'line\r\nbreak', ''),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.constant(Number.NaN),
    fc.date({ noInvalidDate: true }),
    fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }),
    fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxLength: 3 }),
  );
  const record = fc.record({
    action: fc.oneof(fc.constantFrom('apuesta_recibida', 'sorteo'), fc.constant(undefined)),
    result: fc.constantFrom('success', 'fail', 'in_progress'),
    // pino's own keys among them now and then: their values win in its JSON.
    fields: fc.dictionary(fc.oneof(fc.stringMatching(/^[a-z_]{1,8}$/), fc.constantFrom('level', 'time', 'msg')), value, { maxKeys: 6 }),
    msg: fc.oneof(fc.constant(undefined), fc.string({ maxLength: 8 })),
    level: fc.constantFrom('debug', 'info', 'warn', 'error') as fc.Arbitrary<'debug' | 'info' | 'warn' | 'error'>,
  });

  it('writes every record as formatLine writes pino JSON of it: flat records directly, others through pino', () => {
    fc.assert(
      fc.property(record, ({ action, result, fields, msg, level }) => {
        const o = { action, result, ...fields };
        const { text, viaJson } = bothWays((log) => (msg === undefined ? log[level](o) : log[level](o, msg)));
        expect(text).toHaveLength(1);
        expect(text).toEqual(viaJson);
      }),
      { numRuns: 500 },
    );
  });

  it('takes pino for what is not a flat record: an Error, a bare message, a child with bindings', () => {
    const boom = new Error('boom');
    const { text, viaJson } = bothWays((log) => {
      log.error({ action: 'exit', result: 'fail', err: boom });
      log.info('just a message');
      log.child({ sesion: 7 }).info({ action: 'conexion', result: 'success', agencia: 2 });
    });
    expect(text).toEqual(viaJson);
    expect(text[2]).toBe(' INFO  action: conexion | result: success | sesion: 7 | agencia: 2\n');
  });

  it("keeps what pino's JSON does with a record's own time, level or msg, and with an action that is no string", () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', format: 'text', destination: { write: (l) => lines.push(l) } });
    const self: Record<string, unknown> = {};
    self.self = self;
    log.info({ action: 'a', result: 'success', time: 0, msg: 'hi' });
    log.info({ action: 'b', result: 'success', time: 8.64e15 + 1 });
    log.info({ action: self, result: 10n });
    expect(lines[0]).toBe('1970-01-01T00:00:00.000Z INFO  action: a | result: success | msg: hi\n');
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT.* INFO {2}action: b \| result: success\n$/);
    expect(lines[2]).toMatch(/ INFO {2}action: \{"self":"\[Circular\]"\} \| result: 10\n$/);
  });
});
