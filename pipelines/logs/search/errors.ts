// What can go wrong in a search that the person asking can act on. The CLI prints these as one line
// with what to do; the HTTP API answers with the status each kind names. A bad query is a QueryError
// (pipelines/logs/query), which carries its column and caret.

export type SearchErrorKind =
  /** The request itself is wrong: a period, a time, a limit, an interval. */
  | "bad-request"
  /** The caller's token does not cover a service it asked for. */
  | "forbidden"
  /** The line (hit id) does not exist, or not within the caller's services. */
  | "not-found"
  /** The request is well formed but cannot be answered for this line (context of a line without a source). */
  | "unprocessable"
  /** Elasticsearch did not answer. */
  | "unavailable"
  /** The store stopped the search at its time limit. */
  | "timeout"
  /** The store's quota or concurrency limit for searches is reached: try again later. */
  | "overloaded";

export class SearchError extends Error {
  constructor(
    readonly kind: SearchErrorKind,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "SearchError";
  }

  /** What the store said, for the server's log: never shown to the user (it names the store's DSL, not theirs). */
  storeReason?: string;

  /** Seconds to wait before asking again (overloaded). */
  retryAfterSeconds?: number;
}

/** The HTTP status of each kind. */
export const STATUS_OF: Record<SearchErrorKind, number> = {
  "bad-request": 400,
  forbidden: 403,
  "not-found": 404,
  unprocessable: 422,
  unavailable: 503,
  timeout: 504,
  overloaded: 429,
};
