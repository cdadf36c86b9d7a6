// What a failed request to ClickHouse means for the sink: retry it (the server or the network is
// having a bad moment), split it (some rows are bad; the others must still land), or give up (the
// table is missing, the user may not write it: no retry will help, an operator must act).
//
// The client (1.x) parses modern error texts ("Code: 60. DB::Exception: ... (UNKNOWN_TABLE)") into
// ClickHouseError with `code`; 18.16 answers "Code: 60, e.displayText() = DB::Exception: ...", which
// the client leaves as a plain Error, so the code is read from the text here too. 18.16 also answers
// every exception with HTTP 500, so the status says nothing: the code decides.

export type FailureKind = "transient" | "rows" | "fatal";

export interface Failure {
  kind: FailureKind;
  /** ClickHouse's error code, when the server answered. */
  code: number | null;
  /** The server's message without the wrapping ("e.displayText() = DB::Exception:", the stack). */
  message: string;
  /** 1-based row of the request body the server could not read, when it says ("(at row 12)"). */
  row: number | null;
}

/** Codes for data a row carries: the row is bad, the request is fine. */
const ROW_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  36, // BAD_ARGUMENTS (an unknown Enum element in modern releases)
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  49, // LOGICAL_ERROR: 18.16 raises it for an unknown Enum element ("Unknown element 'X' for type Enum8")
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA (an unknown field in JSONEachRow, ...)
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  376, // CANNOT_PARSE_UUID
  441, // CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING
  467, // CANNOT_PARSE_BOOL
  691, // UNKNOWN_ELEMENT_OF_ENUM
]);

/** Codes of a server that is busy, restarting or cut off: the same request may succeed later. */
const TRANSIENT_CODES = new Set([
  3, // UNEXPECTED_END_OF_FILE (a body cut short in transit)
  32, // ATTEMPT_TO_READ_AFTER_EOF
  33, // CANNOT_READ_ALL_DATA
  159, // TIMEOUT_EXCEEDED
  160, // TOO_SLOW
  173, // CANNOT_ALLOCATE_MEMORY
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  203, // NO_FREE_CONNECTION
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  225, // NO_ZOOKEEPER
  236, // ABORTED
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY (replica lost ZooKeeper)
  252, // TOO_MANY_PARTS
  285, // TOO_FEW_LIVE_REPLICAS
  319, // UNKNOWN_STATUS_OF_INSERT
  394, // QUERY_WAS_CANCELLED
  425, // SYSTEM_ERROR
  439, // CANNOT_SCHEDULE_TASK
  999, // KEEPER_EXCEPTION
  1000, // POCO_EXCEPTION
]);

const CODE_RE = /(?:Code|Error): (\d+)/;
const ROW_RE = /\(at row (\d+)\)/;

export function classify(err: unknown): Failure {
  const e = err as { code?: unknown; message?: unknown } | null;
  const text = typeof e?.message === "string" ? e.message : String(err);
  const codeFromText = CODE_RE.exec(text);
  let code: number | null = codeFromText ? Number(codeFromText[1]) : null;
  if (code === null && typeof e?.code === "string" && /^\d+$/.test(e.code)) code = Number(e.code);
  const rowMatch = ROW_RE.exec(text);
  const row = rowMatch ? Number(rowMatch[1]) : null;
  const message = cleanMessage(text);
  if (code === null) {
    // No answer from ClickHouse: a socket error, the client's request timeout, a proxy's error page,
    // a reset mid-body. None of these says anything about the rows, so the request is tried again.
    return { kind: "transient", code, message, row };
  }
  if (ROW_CODES.has(code)) return { kind: "rows", code, message, row };
  if (TRANSIENT_CODES.has(code)) return { kind: "transient", code, message, row };
  return { kind: "fatal", code, message, row };
}

/** "Code: 27, e.displayText() = DB::Exception: Cannot parse input: ...: (at row 3)\n, e.what() = DB::Exception" -> "Code 27: Cannot parse input: ...: (at row 3)" */
export function cleanMessage(text: string): string {
  const code = CODE_RE.exec(text)?.[1];
  let m = text;
  const at = m.lastIndexOf("DB::Exception: ");
  if (at >= 0) m = m.slice(at + "DB::Exception: ".length);
  m = m
    .replace(/,?\s*e\.what\(\) = DB::Exception\s*$/s, "")
    .replace(/\s*\(version [^)]*\)\s*$/s, "")
    .trim();
  if (m.length > 1000) m = `${m.slice(0, 1000)}...`;
  return code ? `Code ${code}: ${m}` : m;
}
