// What Elasticsearch's answer to a bulk request means for the sink.
//
// A bulk request fails in two ways. The whole request can fail: no answer (connection refused or
// reset, a timeout), or an HTTP error for all of it (429 when the node's indexing pressure is too
// high, 503 while it starts, 413 when the body is larger than http.max_content_length). Or the
// request succeeds and some of its items fail, each with its own status: 409 when a document with
// that _id exists (a replay: the `create` did its job before), 429 when the shard's write queue was
// full, 400 when the document does not fit the mapping. Logstash's Elasticsearch output draws the
// same lines: 409 dropped as done, 400 and 404 to its dead-letter queue, the rest retried.

export type ItemOutcome =
  /** Indexed now. */
  | "created"
  /** A document with this _id exists: written before, by an earlier try or run. */
  | "duplicate"
  /** Elasticsearch was busy or not ready: the same item may succeed later. */
  | "retry"
  /** The document itself is refused (mapping, size, arguments): no retry helps; it goes to the dead letters. */
  | "reject"
  /** Refused for every document alike (permissions, a missing index that may not be created): an operator must act. */
  | "fatal";

export interface ItemError {
  type?: string;
  reason?: string | null;
  caused_by?: ItemError;
}

/** Error types of items refused because of who writes or where, not what: every other item would fail alike. */
const FATAL_ITEM_TYPES = new Set(["index_not_found_exception", "security_exception"]);

export function classifyItem(status: number, error?: ItemError | null): ItemOutcome {
  if (status >= 200 && status < 300) return "created";
  const type = error?.type;
  if (status === 409 && (type === undefined || type === "version_conflict_engine_exception")) return "duplicate";
  if (status === 429 || status >= 500) return "retry";
  // A read-only index block (the flood-stage disk watermark) is lifted by Elasticsearch once space is freed.
  if (type === "cluster_block_exception") return "retry";
  if (status === 401 || status === 403 || (type !== undefined && FATAL_ITEM_TYPES.has(type))) return "fatal";
  return "reject";
}

/** `mapper_parsing_exception: failed to parse field [x] ... (caused by illegal_argument_exception: ...)`, at most 1,000 characters. */
export function describeItemError(error: ItemError | null | undefined, status?: number): string {
  if (!error) return status === undefined ? "unknown error" : `status ${status}`;
  let text = error.type ? `${error.type}: ${error.reason ?? ""}`.trimEnd() : (error.reason ?? "unknown error");
  let cause = error.caused_by;
  for (let depth = 0; cause && depth < 3; depth++) {
    text += ` (caused by ${cause.type ?? "?"}: ${cause.reason ?? ""})`;
    cause = cause.caused_by;
  }
  return text.length > 1000 ? `${text.slice(0, 1000)}...` : text;
}

export type RequestFailureKind =
  /** Try the same request again after a pause. */
  | "transient"
  /** The body is larger than the server takes: send its items in smaller requests. */
  | "too-large"
  /** No retry helps (a bad request, credentials, not Elasticsearch). */
  | "fatal"
  /** Aborted by the sink itself (closing). */
  | "aborted";

export interface RequestFailure {
  kind: RequestFailureKind;
  /** HTTP status, when the server answered. */
  status: number | null;
  message: string;
  /** The server's Retry-After, in ms, when it sent one. */
  retryAfterMs: number | null;
}

/** Statuses of a whole request that a later try may not get: overload, a node starting or a proxy's bad moment. */
const TRANSIENT_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** Error names of @elastic/transport for requests that got no usable answer. */
const TRANSIENT_ERRORS = new Set([
  "ConnectionError",
  "TimeoutError",
  "NoLivingConnectionsError",
  "DeserializationError",
]);

interface TransportErrorShape {
  name?: string;
  message?: string;
  code?: unknown;
  meta?: { statusCode?: number; headers?: Record<string, string | string[] | undefined>; body?: unknown };
}

export function classifyRequestError(err: unknown): RequestFailure {
  const e = (err ?? {}) as TransportErrorShape;
  const name = typeof e.name === "string" ? e.name : "";
  const message = typeof e.message === "string" ? e.message : String(err);
  if (name === "RequestAbortedError" || name === "AbortError") {
    return { kind: "aborted", status: null, message, retryAfterMs: null };
  }
  if (name === "ResponseError") {
    const status = e.meta?.statusCode ?? null;
    const body = e.meta?.body as { error?: ItemError | string } | string | undefined;
    const error = typeof body === "object" && body !== null ? body.error : undefined;
    const text =
      typeof error === "object" && error !== null
        ? describeItemError(error, status ?? undefined)
        : typeof error === "string"
          ? error
          : message;
    const what = `HTTP ${status}: ${text}`;
    const retryAfterMs = parseRetryAfter(e.meta?.headers?.["retry-after"]);
    if (status === 413) return { kind: "too-large", status, message: what, retryAfterMs };
    if (status !== null && TRANSIENT_STATUSES.has(status))
      return { kind: "transient", status, message: what, retryAfterMs };
    return { kind: "fatal", status, message: what, retryAfterMs };
  }
  if (TRANSIENT_ERRORS.has(name)) return { kind: "transient", status: null, message, retryAfterMs: null };
  if (name === "ProductNotSupportedError") {
    return {
      kind: "fatal",
      status: null,
      message: `${message} (the URL answers, but not as Elasticsearch: check the node URL)`,
      retryAfterMs: null,
    };
  }
  // A system error that escaped the transport's wrapping (ECONNRESET, ...) says nothing about the documents.
  if (typeof e.code === "string" && /^E[A-Z]+$/.test(e.code)) {
    return { kind: "transient", status: null, message, retryAfterMs: null };
  }
  return { kind: "fatal", status: null, message, retryAfterMs: null };
}

/** Retry-After as ms: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === "") return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : null;
}
