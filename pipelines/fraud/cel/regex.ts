// Regular expressions of the rules: RE2 syntax and linear-time matching (re2js), so that no pattern an
// analyst writes can make a worker backtrack for minutes on one chat line. The CEL library's own
// `matches()` uses JavaScript's backtracking RegExp; the compiler routes every `matches()` to these
// instead (cel/expression.ts), and a pattern must be a literal, compiled once with the rule set.
import { RE2JS } from "re2js";

/** A pattern longer than this is refused: nobody needs it, and RE2's program grows with it. */
export const MAX_PATTERN_LENGTH = 1024;
/** Counted repetitions multiply a program's size (`(a{100}){100}`): their product is capped. */
export const MAX_REPEAT_PRODUCT = 2000;
/** Inputs longer than this are matched on their first MAX_INPUT_LENGTH characters. */
export const MAX_INPUT_LENGTH = 64 * 1024;

export class PatternError extends Error {
  constructor(
    message: string,
    /** Offset inside the pattern, when known. */
    readonly offset?: number,
  ) {
    super(message);
    this.name = "PatternError";
  }
}

/** The compiled patterns of one rule set, by their source text. */
export class PatternTable {
  private readonly compiled = new Map<string, RE2JS>();

  /** Compiles `pattern` (RE2 syntax) or throws a PatternError saying what is wrong. */
  add(pattern: string): void {
    if (this.compiled.has(pattern)) return;
    if (pattern.length > MAX_PATTERN_LENGTH)
      throw new PatternError(`the pattern is ${pattern.length} characters; at most ${MAX_PATTERN_LENGTH}`);
    const product = repeatProduct(pattern);
    if (product > MAX_REPEAT_PRODUCT)
      throw new PatternError(
        `counted repetitions nest to ${product} copies (at most ${MAX_REPEAT_PRODUCT}): use * or + instead of large {n} counts`,
      );
    let re: RE2JS;
    try {
      re = RE2JS.compile(pattern);
    } catch (e) {
      throw new PatternError(`not an RE2 regular expression: ${(e as Error).message}`);
    }
    this.compiled.set(pattern, re);
  }

  /** Whether `text` contains a match of `pattern` (CEL's `matches` is a search, as in RE2's PartialMatch). */
  test(text: string, pattern: string): boolean {
    const re = this.compiled.get(pattern);
    if (!re) throw new PatternError(`pattern not compiled with the rule set: ${pattern}`);
    return re.test(text.length > MAX_INPUT_LENGTH ? text.slice(0, MAX_INPUT_LENGTH) : text);
  }

  get size(): number {
    return this.compiled.size;
  }
}

/**
 * An upper bound of how many copies counted repetitions make of their operands: the product of the
 * `{n}`/`{n,m}` maxima along the deepest nesting of groups. Read without recursion (a stack of groups).
 */
export function repeatProduct(pattern: string): number {
  const stack: number[] = [1]; // the product inside each open group
  let worst = 1;
  let lastAtomProduct = 1; // product of the atom just closed (a group), for a {n} that follows it
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      i++;
      lastAtomProduct = 1;
      continue;
    }
    if (c === "[") {
      // a class is one atom: skip to its end
      let j = i + 1;
      if (pattern[j] === "^") j++;
      if (pattern[j] === "]") j++;
      while (j < pattern.length && pattern[j] !== "]") j += pattern[j] === "\\" ? 2 : 1;
      i = j;
      lastAtomProduct = 1;
      continue;
    }
    if (c === "(") {
      stack.push(1);
      continue;
    }
    if (c === ")") {
      const inner = stack.length > 1 ? (stack.pop() as number) : 1;
      lastAtomProduct = inner;
      const top = stack.length - 1;
      stack[top] = Math.max(stack[top] as number, inner);
      continue;
    }
    if (c === "{") {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i));
      if (m) {
        const n = Math.max(Number(m[1]), m[2] ? Number(m[2]) : 0, 1);
        const copies = lastAtomProduct * n;
        const top = stack.length - 1;
        stack[top] = Math.max(stack[top] as number, copies);
        worst = Math.max(worst, copies);
        i += m[0].length - 1;
        continue;
      }
    }
    lastAtomProduct = 1;
  }
  for (const p of stack) worst = Math.max(worst, p);
  return worst;
}
