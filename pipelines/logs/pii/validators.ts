// Checks that tell a real identifier from a number that only looks like one: the ID card's
// ISO 7064 MOD 11-2 check character and birth date, the bank card's Luhn digit and issuer prefix.
// They work on character positions of the scanned string, so a rejected candidate costs no allocation.

const ZERO = 48;

/** Provinces (and the 81/82/83 residence permits of Hong Kong, Macau and Taiwan) an ID number can start with. */
const PROVINCES = new Set([
  11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
  64, 65, 71, 81, 82, 83,
]);

const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = "10X98765432";

function digitAt(s: string, i: number): number {
  return s.charCodeAt(i) - ZERO;
}

function num(s: string, from: number, len: number): number {
  let n = 0;
  for (let i = from; i < from + len; i++) n = n * 10 + digitAt(s, i);
  return n;
}

function validDate(year: number, month: number, day: number, minYear: number, maxYear: number): boolean {
  if (year < minYear || year > maxYear || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  return day <= days;
}

function idCheckIndex(s: string, from: number): number {
  let sum = 0;
  for (let k = 0; k < 17; k++) sum += digitAt(s, from + k) * (ID_WEIGHTS[k] as number);
  return sum % 11;
}

/** The MOD 11-2 check character (0-9 or X) of the 17 digits at `from`. */
export function idCheckChar(s: string, from: number): string {
  return ID_CHECK[idCheckIndex(s, from)] as string;
}

/**
 * An 18-character resident ID number at `from`: 17 digits then a digit or X (the caller has checked
 * the characters), a known province, a birth date between 1900 and `maxYear`, and the right check character.
 */
export function isIdCard18(s: string, from: number, maxYear: number): boolean {
  if (!PROVINCES.has(num(s, from, 2))) return false;
  if (!validDate(num(s, from + 6, 4), num(s, from + 10, 2), num(s, from + 12, 2), 1900, maxYear)) return false;
  const expected = ID_CHECK.charCodeAt(idCheckIndex(s, from));
  const actual = s.charCodeAt(from + 17);
  return actual === expected || (expected === 0x58 && actual === 0x78); // X or x
}

/**
 * The old 15-digit ID number (issued until 2004): province, a birth date 19YYMMDD and a sequence
 * number, with no check digit at all, so only the province and the date tell it from any number.
 */
export function isIdCard15(s: string, from: number): boolean {
  if (!PROVINCES.has(num(s, from, 2))) return false;
  return validDate(1900 + num(s, from + 6, 2), num(s, from + 8, 2), num(s, from + 10, 2), 1900, 1999);
}

/** The 18-character form of an old 15-digit number: the century inserted, the check character computed. */
export function idCard15To18(digits15: string): string {
  const body = `${digits15.slice(0, 6)}19${digits15.slice(6)}`;
  return body + idCheckChar(body, 0);
}

/** Luhn over `digits` (digits only). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digitAt(digits, i);
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * Whether a card number of `len` digits may start with the two digits `first2` (and `first4` for the
 * ranges that need four): Visa 4 (16, 19), Mastercard 51-55 and 2221-2720 (16), Maestro and debit
 * 5x (16-19), UnionPay 62 and 81, Discover and Maestro 6x (16-19), Amex 34/37 (15), JCB 35 (16-19),
 * Diners 30/36/38/39 (14-19). Nothing starts with 0, 1, 7 or 9, which is what keeps millisecond and
 * microsecond timestamps, and 13-digit ids, out.
 */
export function knownCardPrefix(first4: number, len: number): boolean {
  const first2 = Math.floor(first4 / 100);
  switch (Math.floor(first2 / 10)) {
    case 2:
      return len === 16 && first4 >= 2221 && first4 <= 2720;
    case 3:
      if (first2 === 34 || first2 === 37) return len === 15;
      if (first2 === 35) return len >= 16 && first4 >= 3528 && first4 <= 3589;
      return (first2 === 30 || first2 === 36 || first2 === 38 || first2 === 39) && len >= 14;
    case 4:
      return len === 16 || len === 19;
    case 5:
    case 6:
      return len >= 16;
    case 8:
      return first2 === 81 && len >= 16;
    default:
      return false;
  }
}
