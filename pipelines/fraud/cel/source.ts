// A pass over an expression's text before the CEL parser sees it: list references (`@name`) become
// CEL identifiers, `matches` is routed to RE2, reserved names are refused, and what the parser
// cannot survive is refused early (too long, nesting or unary chains deep enough to overflow its
// recursion). Every rewrite keeps the text's length, so positions in errors stay exact. One linear
// scan, no recursion.
import { RE2_FUNCTION } from "./environment.ts";

export const MAX_EXPRESSION_LENGTH = 4096;
/** Brackets open at once; the CEL parser's own depth limit is applied too. */
export const MAX_NESTING = 32;
/** `!!!!x` or `----1`: the parser recurses once per operator, outside its depth limit. */
export const MAX_UNARY_RUN = 8;

export interface SourceProblem {
  /** Offset in the expression. */
  offset: number;
  message: string;
}

export interface Identifier {
  name: string;
  start: number;
  end: number;
}

export interface PreparedSource {
  /** The text the CEL parser gets: the same length as the original. */
  text: string;
  /** `@name` references. */
  lists: Identifier[];
  /** Identifiers not after a `.` and not called: variables, macros, comprehension variables. */
  names: Identifier[];
  problems: SourceProblem[];
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

export function prepareSource(source: string): PreparedSource {
  const problems: SourceProblem[] = [];
  const lists: Identifier[] = [];
  const names: Identifier[] = [];
  if (source.length > MAX_EXPRESSION_LENGTH) {
    problems.push({
      offset: 0,
      message: `the expression is ${source.length} characters; at most ${MAX_EXPRESSION_LENGTH} (split it with macros)`,
    });
    return { text: source, lists, names, problems };
  }
  const out = source.split("");
  let depth = 0;
  let unaryRun = 0;
  let i = 0;
  let prevSignificant = ""; // the last non-space character outside strings
  while (i < source.length) {
    const c = source[i] as string;
    // string literals, with their r/b prefixes
    const lit = stringLiteralAt(source, i);
    if (lit !== undefined) {
      if (lit.end < 0) {
        problems.push({ offset: i, message: "this string is never closed" });
        break;
      }
      i = lit.end;
      prevSignificant = '"';
      unaryRun = 0;
      continue;
    }
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c === "!" && source[i + 1] !== "=") {
      if (++unaryRun > MAX_UNARY_RUN) {
        problems.push({ offset: i, message: `more than ${MAX_UNARY_RUN} ! or - in a row` });
        break;
      }
      prevSignificant = c;
      i++;
      continue;
    }
    if (c === "-" && !/[A-Za-z0-9_)\]"'}]/.test(prevSignificant)) {
      if (++unaryRun > MAX_UNARY_RUN) {
        problems.push({ offset: i, message: `more than ${MAX_UNARY_RUN} ! or - in a row` });
        break;
      }
      prevSignificant = c;
      i++;
      continue;
    }
    unaryRun = 0;
    if (c === "(" || c === "[" || c === "{") {
      if (++depth > MAX_NESTING) {
        problems.push({ offset: i, message: `brackets nest more than ${MAX_NESTING} deep (split it with macros)` });
        break;
      }
    } else if (c === ")" || c === "]" || c === "}") {
      depth = Math.max(0, depth - 1);
    }
    if (c === "@") {
      let j = i + 1;
      if (j < source.length && IDENT_START.test(source[j] as string)) {
        while (j < source.length && IDENT_PART.test(source[j] as string)) j++;
        out[i] = "_";
        lists.push({ name: source.slice(i + 1, j), start: i, end: j });
        i = j;
        prevSignificant = "a";
        continue;
      }
      problems.push({ offset: i, message: "@ must be followed by a list's name, e.g. @virtual_prefixes" });
      i++;
      continue;
    }
    if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < source.length && IDENT_PART.test(source[j] as string)) j++;
      const name = source.slice(i, j);
      const afterDot = prevSignificant === ".";
      let k = j;
      while (k < source.length && /\s/.test(source[k] as string)) k++;
      const called = source[k] === "(";
      if (name === "matches" && called) {
        for (let n = 0; n < RE2_FUNCTION.length; n++) out[i + n] = RE2_FUNCTION[n] as string;
      } else if (name === RE2_FUNCTION || (name.startsWith("_") && !afterDot)) {
        problems.push({
          offset: i,
          message: name.startsWith("_")
            ? `names starting with _ are reserved; a list is written @${name.slice(1)}`
            : `${name} is reserved`,
        });
      } else if (!afterDot && !called) {
        names.push({ name, start: i, end: j });
      }
      i = j;
      prevSignificant = "a";
      continue;
    }
    if (/[0-9]/.test(c)) {
      // a number, including 1.5e3 and 0x1F: skipped whole so its letters are not identifiers
      let j = i + 1;
      while (j < source.length && /[0-9a-fA-FxXuU.eE]/.test(source[j] as string)) {
        if ((source[j] === "e" || source[j] === "E") && (source[j + 1] === "-" || source[j + 1] === "+")) j++;
        j++;
      }
      i = j;
      prevSignificant = "0";
      continue;
    }
    prevSignificant = c;
    i++;
  }
  return { text: out.join(""), lists, names, problems };
}

/** The string literal starting at `i`, if one does: its end (exclusive), or -1 if it never closes. */
function stringLiteralAt(s: string, i: number): { end: number } | undefined {
  let j = i;
  let raw = false;
  // prefixes: r, R, b, B and their pairs
  for (let n = 0; n < 2 && j < s.length && /[rRbB]/.test(s[j] as string); n++) {
    if (s[j] === "r" || s[j] === "R") raw = true;
    j++;
  }
  const q = s[j];
  if (q !== '"' && q !== "'") return undefined;
  // a prefix letter must start the token, not end an identifier (`attr"x"` is not a literal)
  if (j > i && i > 0 && IDENT_PART.test(s[i - 1] as string)) return undefined;
  const triple = s[j + 1] === q && s[j + 2] === q;
  const close = triple ? q.repeat(3) : q;
  let k = j + close.length;
  while (k < s.length) {
    if (!raw && s[k] === "\\") {
      k += 2;
      continue;
    }
    if (s.startsWith(close, k)) return { end: k + close.length };
    if (!triple && (s[k] === "\n" || s[k] === "\r")) return { end: -1 };
    k++;
  }
  return { end: -1 };
}
