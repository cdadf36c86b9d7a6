// The query as parsed, before its fields mean anything: what `weir logs search` users typed, with the
// place of every field and value so that errors can point at them.

/** Offsets into the query text, 0-based, end exclusive. */
export interface Span {
  start: number;
  end: number;
}

/** A value as typed: a word, a word with unescaped `*` wildcards, or a quoted phrase. */
export type Value =
  | { kind: "term"; text: string; span: Span }
  /** `parts` are the literal pieces between the wildcards: `gift*` is ["gift", ""]. */
  | { kind: "wildcard"; text: string; parts: string[]; span: Span }
  | { kind: "phrase"; text: string; span: Span };

export interface FieldRef {
  name: string;
  span: Span;
}

export interface Bound {
  value: Value;
  inclusive: boolean;
}

export type QueryNode =
  | { type: "all" }
  | { type: "and"; children: QueryNode[] }
  | { type: "or"; children: QueryNode[] }
  | { type: "not"; child: QueryNode }
  /** `field:value`, or with no field a bare term or phrase (full text). */
  | { type: "match"; field: FieldRef | null; value: Value }
  /** `field:*` */
  | { type: "exists"; field: FieldRef }
  /** `status >= 500`, `status:[500 TO 599]`; an open end is left out. */
  | { type: "range"; field: FieldRef; lower?: Bound; upper?: Bound };

/** A mistake in a query, with the place it was found: the message shows the query and a caret under it. */
export class QueryError extends Error {
  /** 1-based column of the mistake. */
  readonly column: number;

  constructor(
    readonly problem: string,
    readonly query: string,
    readonly span: Span,
    readonly hint?: string,
  ) {
    const shown = excerpt(query, span);
    super(`${problem} (column ${span.start + 1})\n  ${oneLine(shown.text)}\n  ${caret(shown.span, shown.text.length)}`);
    this.name = "QueryError";
    this.column = span.start + 1;
  }
}

/** Characters of the query shown around the place of a mistake: a long query is cut to a window around it. */
const SHOWN = 100;

function excerpt(query: string, span: Span): { text: string; span: Span } {
  if (query.length <= SHOWN) return { text: query, span };
  const start = Math.max(0, Math.min(span.start - SHOWN / 2, query.length - SHOWN));
  const end = Math.min(query.length, start + SHOWN);
  const before = start > 0 ? "…" : "";
  const shift = before.length - start;
  return {
    text: `${before}${query.slice(start, end)}${end < query.length ? "…" : ""}`,
    span: { start: span.start + shift, end: Math.min(span.end, end) + shift },
  };
}

function oneLine(query: string): string {
  return query.replace(/[\r\n\t]/g, " ");
}

function caret(span: Span, length: number): string {
  const start = Math.min(span.start, length);
  const width = Math.max(1, Math.min(span.end, length) - start);
  return `${" ".repeat(start)}${"^".repeat(width)}`;
}
