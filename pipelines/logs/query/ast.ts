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
    super(`${problem} (column ${span.start + 1})\n  ${oneLine(query)}\n  ${caret(span, query.length)}`);
    this.name = "QueryError";
    this.column = span.start + 1;
  }
}

function oneLine(query: string): string {
  return query.replace(/[\r\n\t]/g, " ");
}

function caret(span: Span, length: number): string {
  const start = Math.min(span.start, length);
  const width = Math.max(1, Math.min(span.end, length) - start);
  return `${" ".repeat(start)}${"^".repeat(width)}`;
}
