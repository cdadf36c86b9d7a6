-- The logs pipeline's table (pipelines/logs): every app and access log line, PII already masked.
-- Applied by `weir migrate` and `weir stack up`. Written for ClickHouse 18.16 (the local stack) and
-- later: no DateTime64, TTL, codecs, Map, LowCardinality or data-skipping indexes.
--
-- Replays: the pipeline commits Kafka offsets only after ClickHouse acknowledged the rows, so a crash
-- between the two writes the same rows again. A plain MergeTree would keep both copies for ever; a
-- ReplacingMergeTree keeps one row per sorting key (service, ts, ts_ms, id) once its parts merge.
-- Until then a replayed row can be seen twice: read with FINAL (or `LIMIT 1 BY id`) where an exact
-- count matters. A line's copies are identical (masking is deterministic), so which one stays does not
-- matter and there is no version column.
--
-- Column names are the ones the query language uses (pipelines/logs/query/fields.ts, LOG_SCHEMA).
-- Fields a line does not have hold the type's default ('' or 0), which is what `field:*` tests.

CREATE DATABASE IF NOT EXISTS weir;

CREATE TABLE IF NOT EXISTS weir.logs
(
    ts DateTime,                  -- event time, to the second (partitions, primary key)
    ts_ms UInt64,                 -- event time in milliseconds since the epoch (order within a second)
    dataset String,               -- 'app' (logs.app) or 'access' (logs.access); String so that dataset != '' works
    service String,
    level Enum8('TRACE' = 1, 'DEBUG' = 2, 'INFO' = 3, 'WARN' = 4, 'ERROR' = 5, 'FATAL' = 6),  -- access: ERROR for 5xx, else INFO
    host String,
    logger String,
    message String,               -- access: "POST /gift/send 200 in 12.3 ms", as in Elasticsearch
    trace_id String,
    span_id String,
    error_type String,            -- app: the error's class or code
    error_message String,
    error_stack String,
    error_code String,            -- access: the application error code (BALANCE_NOT_ENOUGH)
    attr_keys Array(String),      -- app: the attributes, key i's value is attr_values[i]
    attr_values Array(String),
    app String,                   -- access: the availability hierarchy above the service
    system String,
    endpoint String,              -- access: the route template
    method String,
    status UInt16,
    latency_us UInt64,
    bytes_in UInt64,
    bytes_out UInt64,
    uid UInt64,                   -- 0: anonymous
    device_id String,
    client_ip String,
    user_agent String,
    room_id UInt64,
    caller String,
    source_file String,           -- where weir ship read the line; '' and 0 for records produced straight to Kafka
    source_file_id String,
    source_offset UInt64,
    source_seq UInt64,
    id String                     -- the line's id, also its Elasticsearch _id
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
PRIMARY KEY (service, ts)
ORDER BY (service, ts, ts_ms, id);
