// The on-call search language, KQL's: `field:value`, `field:"a phrase"`, bare words and phrases
// (full text), AND / OR / NOT in any case with AND implied between terms, parentheses, `*` wildcards,
// `field:*` (exists), ranges `status >= 500`, `status:>=500`, `status:[500 TO 599]`, and value lists
// `service:(gift-svc OR pay-svc)`. NOT binds tighter than AND, AND tighter than OR.
//
// A recursive descent over the characters: where a `:` or a `[` means something depends on where it
// stands (`trace:ab:cd` is the value `ab:cd`), which a separate tokenizer would have to guess. The
// recursion is bounded: every level of nesting (a parenthesis, a NOT, a value list) is counted before
// the parser descends into it, and one past the limit is refused, so no query can overflow the stack.
import { type Bound, type FieldRef, QueryError, type QueryNode, type Span, type Value } from "./ast.ts";
import { checkQueryLength, DEFAULT_QUERY_LIMITS, QueryLimitError, type QueryLimits } from "./limits.ts";

const KEYWORDS = new Set(["and", "or", "not", "to"]);

/** Ends any word. */
function endsWord(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "(" || c === ")" || c === '"';
}

/** Where a word may turn out to be a field name, these end it too. */
function endsFieldWord(c: string): boolean {
  return endsWord(c) || c === ":" || c === "<" || c === ">";
}

interface Word {
  /** Unescaped text; unescaped `*` are wildcards. */
  text: string;
  parts: string[] | null;
  /** Typed with a backslash escape: never a keyword. */
  escaped: boolean;
  span: Span;
}

/** Throws QueryError for a mistake, QueryLimitError for a query longer or deeper than the limits allow. */
export function parseQuery(query: string, limits: QueryLimits = DEFAULT_QUERY_LIMITS): QueryNode {
  checkQueryLength(query, limits);
  return new Parser(query, limits.maxDepth).parse();
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly q: string,
    private readonly maxDepth: number,
  ) {}

  /** One level deeper, for what starts at `span`: refused past the limit, before any recursion. */
  private enter(span: Span): void {
    if (++this.depth > this.maxDepth) {
      const depth = Math.max(this.depth, typedDepth(this.q));
      throw new QueryLimitError(
        "maxDepth",
        depth,
        this.maxDepth,
        `the query nests ${depth} levels deep, over the limit of ${this.maxDepth} (maxDepth)`,
        this.q,
        span,
        "parentheses, NOT and value lists count; NOT NOT x is x, and (a OR (b OR c)) is a OR b OR c",
      );
    }
  }

  private leave(): void {
    this.depth--;
  }

  parse(): QueryNode {
    this.skipSpace();
    if (this.atEnd()) return { type: "all" };
    const node = this.orExpr(false);
    this.skipSpace();
    if (!this.atEnd()) {
      if (this.peek() === ")")
        throw this.error("a ')' without its '('", this.here(1), "remove it, or add the '(' it closes");
      throw this.error("expected AND, OR or the end of the query", this.here(1));
    }
    return node;
  }

  // ---- boolean structure ------------------------------------------------------------------------------

  /** `inGroup`: inside a field's value list, where terms are values of that field. */
  private orExpr(inGroup: boolean, field?: FieldRef): QueryNode {
    const children = [this.andExpr(inGroup, field)];
    while (this.keywordAhead("or")) {
      const kw = this.keyword();
      children.push(this.operand(inGroup, kw, () => this.andExpr(inGroup, field)));
    }
    return children.length === 1 ? (children[0] as QueryNode) : { type: "or", children };
  }

  private andExpr(inGroup: boolean, field?: FieldRef): QueryNode {
    const children = [this.notExpr(inGroup, field)];
    for (;;) {
      this.skipSpace();
      if (this.atEnd() || this.peek() === ")" || this.keywordAhead("or")) break;
      if (this.keywordAhead("and")) {
        const kw = this.keyword();
        children.push(this.operand(inGroup, kw, () => this.notExpr(inGroup, field)));
      } else {
        children.push(this.notExpr(inGroup, field)); // implicit AND
      }
    }
    return children.length === 1 ? (children[0] as QueryNode) : { type: "and", children };
  }

  private notExpr(inGroup: boolean, field?: FieldRef): QueryNode {
    this.skipSpace();
    if (this.keywordAhead("not")) {
      const kw = this.keyword();
      this.enter(kw.span);
      const child = this.operand(inGroup, kw, () => this.notExpr(inGroup, field));
      this.leave();
      return { type: "not", child };
    }
    return inGroup ? this.groupValue(field as FieldRef) : this.primary();
  }

  /** What follows AND, OR or NOT: an error that names the keyword when nothing does. */
  private operand(inGroup: boolean, kw: Word, parse: () => QueryNode): QueryNode {
    this.skipSpace();
    if (this.atEnd() || this.peek() === ")" || this.keywordAhead("and") || this.keywordAhead("or")) {
      const what = inGroup ? "a value" : "a term";
      throw this.error(
        `expected ${what} after ${kw.text.toUpperCase()}`,
        this.atEnd() ? { start: this.q.length, end: this.q.length + 1 } : this.here(1),
        `to search for the word itself, quote it: "${kw.text}"`,
      );
    }
    return parse();
  }

  private primary(): QueryNode {
    this.skipSpace();
    const c = this.peek();
    if (c === "(") {
      const open = this.here(1);
      this.pos++;
      this.skipSpace();
      if (this.peek() === ")") throw this.error("empty parentheses", { start: open.start, end: this.pos + 1 });
      this.enter(open);
      const node = this.orExpr(false);
      this.leave();
      this.expectClose(open);
      return node;
    }
    if (c === ")") throw this.error("expected a term, found ')'", this.here(1), "remove it, or add the '(' it closes");
    if (c === '"') return { type: "match", field: null, value: this.phrase() };
    const start = this.pos;
    const word = this.word(endsFieldWord);
    if (word.text.length === 0 && !word.escaped) {
      throw this.error(`expected a term, found '${this.q[start]}'`, this.here(1), "quote a value that holds : < or >");
    }
    if (!word.escaped && KEYWORDS.has(word.text.toLowerCase())) {
      throw this.error(
        `expected a term, found ${word.text.toUpperCase()}`,
        word.span,
        `to search for the word itself, quote it: "${word.text}"`,
      );
    }
    // A field name is followed by `:`, or by a comparison (spaces allowed before either).
    const afterWord = this.pos;
    this.skipSpace();
    const next = this.peek();
    if ((next === ":" || next === "<" || next === ">") && !word.escaped && word.parts === null) {
      const field: FieldRef = { name: word.text, span: word.span };
      if (next === ":") {
        this.pos++;
        return this.fieldValue(field);
      }
      return this.comparison(field);
    }
    this.pos = afterWord;
    return { type: "match", field: null, value: this.valueOf(word) };
  }

  // ---- field values -------------------------------------------------------------------------------

  private fieldValue(field: FieldRef): QueryNode {
    this.skipSpace();
    const c = this.peek();
    if (this.atEnd() || c === ")") {
      throw this.error(
        `expected a value after '${field.name}:'`,
        this.atEnd() ? { start: this.q.length, end: this.q.length + 1 } : this.here(1),
        `e.g. ${field.name}:value, ${field.name}:"a phrase" or ${field.name}:*`,
      );
    }
    if (c === "(") {
      const open = this.here(1);
      this.pos++;
      this.skipSpace();
      if (this.peek() === ")")
        throw this.error(`expected values for ${field.name} inside the parentheses`, {
          start: open.start,
          end: this.pos + 1,
        });
      this.enter(open);
      const node = this.orExpr(true, field);
      this.leave();
      this.expectClose(open);
      return node;
    }
    if (c === "[") return this.bracketRange(field);
    if (c === "<" || c === ">") return this.comparison(field);
    if (c === '"') return { type: "match", field, value: this.phrase() };
    const word = this.word(endsWord);
    if (!word.escaped && word.text === "*") return { type: "exists", field };
    if (!word.escaped && KEYWORDS.has(word.text.toLowerCase())) {
      throw this.error(
        `expected a value after '${field.name}:', found ${word.text.toUpperCase()}`,
        word.span,
        `to search for the word itself, quote it: ${field.name}:"${word.text}"`,
      );
    }
    return { type: "match", field, value: this.valueOf(word) };
  }

  /** A value inside `field:( ... )`: a word, a phrase, or a nested list. */
  private groupValue(field: FieldRef): QueryNode {
    this.skipSpace();
    const c = this.peek();
    if (c === "(") {
      const open = this.here(1);
      this.pos++;
      this.enter(open);
      const node = this.orExpr(true, field);
      this.leave();
      this.expectClose(open);
      return node;
    }
    if (c === '"') return { type: "match", field, value: this.phrase() };
    const word = this.word(endsWord);
    if (word.text.length === 0 && !word.escaped) throw this.error(`expected a value for ${field.name}`, this.here(1));
    if (!word.escaped && word.text === "*") return { type: "exists", field };
    return { type: "match", field, value: this.valueOf(word) };
  }

  /** `> v`, `>= v`, `< v`, `<= v` (after `field` or `field:`). */
  private comparison(field: FieldRef): QueryNode {
    const opStart = this.pos;
    const op =
      this.q.startsWith(">=", this.pos) || this.q.startsWith("<=", this.pos)
        ? this.q.slice(this.pos, this.pos + 2)
        : (this.q[this.pos] as string);
    this.pos += op.length;
    this.skipSpace();
    const value = this.boundValue(`a number or duration after '${op}'`, { start: opStart, end: this.pos });
    const bound: Bound = { value, inclusive: op.length === 2 };
    return op[0] === ">" ? { type: "range", field, lower: bound } : { type: "range", field, upper: bound };
  }

  /** `[a TO b]`, either end `*` for open. */
  private bracketRange(field: FieldRef): QueryNode {
    const open = this.here(1);
    this.pos++;
    this.skipSpace();
    const lower = this.rangeEnd("the lower end of the range");
    this.skipSpace();
    const to = this.word(endsRangeWord);
    if (to.escaped || to.text.toLowerCase() !== "to") {
      throw this.error(
        "expected TO in the range",
        to.text ? to.span : this.here(1),
        `a range reads ${field.name}:[500 TO 599]`,
      );
    }
    this.skipSpace();
    const upper = this.rangeEnd("the upper end of the range");
    this.skipSpace();
    if (this.peek() !== "]") {
      throw this.error(
        "expected ']' to close the range",
        this.atEnd() ? { start: this.q.length, end: this.q.length + 1 } : this.here(1),
        `opened at column ${open.start + 1}`,
      );
    }
    this.pos++;
    const node: QueryNode = { type: "range", field };
    if (lower) node.lower = { value: lower, inclusive: true };
    if (upper) node.upper = { value: upper, inclusive: true };
    if (!lower && !upper) return { type: "exists", field };
    return node;
  }

  private rangeEnd(what: string): Value | undefined {
    if (this.peek() === '"') return this.phrase();
    const w = this.word(endsRangeWord);
    if (w.text.length === 0 && !w.escaped) throw this.error(`expected ${what}`, this.here(1));
    if (!w.escaped && w.text === "*") return undefined;
    return this.valueOf(w);
  }

  private boundValue(what: string, opSpan: Span): Value {
    if (this.peek() === '"') return this.phrase();
    const w = this.word(endsWord);
    if (w.text.length === 0 && !w.escaped) throw this.error(`expected ${what}`, this.atEnd() ? opSpan : this.here(1));
    return this.valueOf(w);
  }

  // ---- words and phrases -----------------------------------------------------------------------------

  private word(ends: (c: string) => boolean): Word {
    const start = this.pos;
    let text = "";
    let escaped = false;
    let parts: string[] | null = null;
    let part = "";
    while (!this.atEnd()) {
      const c = this.q[this.pos] as string;
      if (ends(c)) break;
      if (c === "\\") {
        if (this.pos + 1 >= this.q.length)
          throw this.error("a \\ at the end escapes nothing", this.here(1), "write \\\\ for a backslash");
        const e = this.q[this.pos + 1] as string;
        text += e;
        part += e;
        escaped = true;
        this.pos += 2;
        continue;
      }
      if (c === "*") {
        parts ??= [];
        parts.push(part);
        part = "";
      } else {
        part += c;
      }
      text += c;
      this.pos++;
    }
    if (parts) parts.push(part);
    return { text, parts, escaped, span: { start, end: this.pos } };
  }

  private phrase(): Value {
    const start = this.pos;
    this.pos++; // opening quote
    let text = "";
    for (;;) {
      if (this.atEnd())
        throw this.error(
          'unterminated phrase: expected a closing "',
          { start, end: start + 1 },
          'write \\" for a quote inside a phrase',
        );
      const c = this.q[this.pos] as string;
      if (c === '"') break;
      if (c === "\\" && this.pos + 1 < this.q.length) {
        text += this.q[this.pos + 1];
        this.pos += 2;
        continue;
      }
      text += c;
      this.pos++;
    }
    this.pos++;
    const span = { start, end: this.pos };
    if (text.length === 0) throw this.error("an empty phrase matches nothing", span);
    return { kind: "phrase", text, span };
  }

  private valueOf(w: Word): Value {
    if (w.parts) return { kind: "wildcard", text: w.text, parts: w.parts, span: w.span };
    return { kind: "term", text: w.text, span: w.span };
  }

  // ---- helpers --------------------------------------------------------------------------------------

  /** A keyword (AND, OR, NOT in any case) stands next, as a whole word. */
  private keywordAhead(kw: string): boolean {
    this.skipSpace();
    const end = this.pos + kw.length;
    if (this.q.slice(this.pos, end).toLowerCase() !== kw) return false;
    return end >= this.q.length || endsWord(this.q[end] as string);
  }

  private keyword(): Word {
    const start = this.pos;
    while (!this.atEnd() && !endsWord(this.q[this.pos] as string)) this.pos++;
    return { text: this.q.slice(start, this.pos), parts: null, escaped: false, span: { start, end: this.pos } };
  }

  private expectClose(open: Span): void {
    this.skipSpace();
    if (this.peek() !== ")") {
      throw this.error(
        "expected ')'",
        this.atEnd() ? { start: this.q.length, end: this.q.length + 1 } : this.here(1),
        `to close the '(' at column ${open.start + 1}`,
      );
    }
    this.pos++;
  }

  private skipSpace(): void {
    while (!this.atEnd()) {
      const c = this.q[this.pos];
      if (c !== " " && c !== "\t" && c !== "\n" && c !== "\r") break;
      this.pos++;
    }
  }

  private peek(): string | undefined {
    return this.q[this.pos];
  }

  private atEnd(): boolean {
    return this.pos >= this.q.length;
  }

  private here(width: number): Span {
    return { start: this.pos, end: this.pos + width };
  }

  private error(problem: string, span: Span, hint?: string): QueryError {
    return new QueryError(problem, this.q, span, hint);
  }
}

/**
 * How deep a query nests as typed, measured without recursion (for the refusal's message: the parser
 * stops at the first level past the limit). Parentheses and NOTs open a level; a NOT's level closes
 * with the term or group after it.
 */
export function typedDepth(q: string): number {
  const open: Array<"(" | "not"> = [];
  let deepest = 0;
  const closeNots = () => {
    while (open[open.length - 1] === "not") open.pop();
  };
  let i = 0;
  while (i < q.length) {
    const c = q[i] as string;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
    } else if (c === "(") {
      open.push("(");
      deepest = Math.max(deepest, open.length);
      i++;
    } else if (c === ")") {
      closeNots();
      open.pop();
      closeNots();
      i++;
    } else if (c === '"') {
      for (i++; i < q.length && q[i] !== '"'; i++) if (q[i] === "\\") i++;
      i++;
      closeNots();
    } else {
      const start = i;
      let escaped = false;
      while (i < q.length && !endsWord(q[i] as string)) {
        if (q[i] === "\\") {
          escaped = true;
          i++;
        }
        i++;
      }
      const word = q.slice(start, i).toLowerCase();
      if (!escaped && word === "not") {
        open.push("not");
        deepest = Math.max(deepest, open.length);
      } else if (escaped || !(word === "and" || word === "or" || word.endsWith(":"))) {
        closeNots();
      }
    }
  }
  return deepest;
}

function endsRangeWord(c: string): boolean {
  return endsWord(c) || c === "]";
}
