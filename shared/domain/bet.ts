/**
 * The bet model, a port of the course's `Bet` and `has_won`.
 * Every field is kept in its canonical text form except `number`, so that a bet
 * stored and loaded back compares equal field by field. Dates are never turned
 * into `Date` objects: a time zone can shift them by a day.
 */
export interface Bet {
  agency: number;
  firstName: string;
  lastName: string;
  /** DNI: 1 to 10 ASCII digits. Not a key: the same DNI may bet many times. */
  document: string;
  /** `YYYY-MM-DD`, a real calendar date. */
  birthdate: string;
  /** 0 to 9999; 0 is a valid number. */
  number: number;
}

export const WINNING_NUMBER = 7574;
export const MAX_NUMBER = 9999;
/** Names are sent with a one-byte length prefix, so a name is at most 255 UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;

export function hasWon(bet: Pick<Bet, 'number'>): boolean {
  return bet.number === WINNING_NUMBER;
}

const DOCUMENT_RE = /^[0-9]{1,10}$/;
const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const NUMBER_RE = /^[0-9]{1,4}$/;

/** Days in `month` (1-12) of `year`, Gregorian leap years. */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return leap ? 29 : 28;
  }
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** True for `YYYY-MM-DD` naming a real day of the Gregorian calendar (year 1 or later). */
export function isRealDate(text: string): boolean {
  const m = DATE_RE.exec(text);
  if (m === null) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

function isCleanName(name: string): boolean {
  if (name.trim().length === 0) return false;
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) return false;
  // Control characters (CR, LF, NUL...) would break the stored CSV rows and the log lines.
  return !/[\u0000-\u001f\u007f]/.test(name);
}

/**
 * Why a bet is invalid, or null when it is valid. `expectedAgency` is the agency the
 * connection is bound to. The messages say what is wrong and what a valid value is.
 */
export function betProblem(bet: Bet, expectedAgency: number): string | null {
  if (bet.agency !== expectedAgency) return `agency ${bet.agency} is not this connection's agency ${expectedAgency}`;
  if (!isCleanName(bet.firstName)) return 'first name must be 1-255 bytes of printable text';
  if (!isCleanName(bet.lastName)) return 'last name must be 1-255 bytes of printable text';
  if (!DOCUMENT_RE.test(bet.document)) return `document ${JSON.stringify(bet.document)} must be 1 to 10 digits`;
  if (!isRealDate(bet.birthdate)) return `birth date ${JSON.stringify(bet.birthdate)} must be a real date YYYY-MM-DD`;
  if (!Number.isInteger(bet.number) || bet.number < 0 || bet.number > MAX_NUMBER) {
    return `number ${bet.number} must be an integer from 0 to ${MAX_NUMBER}`;
  }
  return null;
}

/**
 * Turns one CSV record of an agency file (`nombre,apellido,documento,nacimiento,numero`)
 * into a bet, or explains why it cannot. Surrounding spaces are trimmed; the number is
 * canonicalised (`0042` is 42).
 */
export function parseAgencyRecord(agency: number, fields: readonly string[]): Bet | string {
  if (fields.length !== 5) return `expected 5 fields (nombre,apellido,documento,nacimiento,numero), found ${fields.length}`;
  const [firstName, lastName, document, birthdate, numberText] = fields.map((f) => f.trim()) as [string, string, string, string, string];
  if (!NUMBER_RE.test(numberText)) return `number ${JSON.stringify(numberText)} must be an integer from 0 to ${MAX_NUMBER}`;
  const bet: Bet = { agency, firstName, lastName, document, birthdate, number: Number(numberText) };
  return betProblem(bet, agency) ?? bet;
}
