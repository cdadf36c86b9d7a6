-- The fraud pipeline's signals (pipelines/fraud): one row per RiskSignal of signals.risk, with the
-- category of the rule that fired. Applied by `weir migrate` and `weir stack up`. Written for
-- ClickHouse 18.16 (the local stack) and later: no DateTime64, TTL, Map or LowCardinality; the
-- evidence's maps are pairs of arrays.
--
-- Replays: a signal's id is derived from its rule, version, entity and triggering event, and the sink
-- writes before the worker commits its offsets, so a crash writes the same rows again. A
-- ReplacingMergeTree keeps one row per sorting key (ts, rule_id, id) once its parts merge; read with
-- FINAL (or `LIMIT 1 BY id`) where an exact count matters.

CREATE DATABASE IF NOT EXISTS weir;

CREATE TABLE IF NOT EXISTS weir.risk_signals
(
    ts DateTime,                       -- event time of the triggering event, to the second
    ts_ms UInt64,                      -- the same in milliseconds since the epoch
    id String,
    rule_id String,
    rule_version UInt32,
    category String,                   -- the rule's category (fake_phone, emulator, ...)
    severity Enum8('LOW' = 1, 'MEDIUM' = 2, 'HIGH' = 3, 'CRITICAL' = 4),
    score Float64,
    action Enum8('ALLOW' = 1, 'REVIEW' = 2, 'CHALLENGE' = 3, 'LIMIT' = 4, 'BLOCK' = 5),
    shadow UInt8,
    entity_type Enum8('USER' = 1, 'DEVICE' = 2, 'IP' = 3, 'PHONE' = 4, 'CARD' = 5, 'ROOM' = 6, 'STREAMER' = 7),
    entity_id String,                  -- PHONE and CARD: keyed hashes
    matched_keys Array(String),        -- evidence.matched: field i has value matched_values[i] (PII masked)
    matched_values Array(String),
    count_keys Array(String),          -- evidence.counts
    count_values Array(Int64),
    window_start UInt64,               -- 0: no window
    window_end UInt64,
    source_event_ids Array(String),
    explanation String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (ts, rule_id, id);
