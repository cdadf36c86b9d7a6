-- The health pipeline's tables (pipelines/health). Applied by `weir migrate` and `weir stack up`.
-- Written for ClickHouse 18.16 (the local stack) and later: no DateTime64, TTL, codecs or Map.
-- Both tables are ReplacingMergeTree keyed by what makes a row unique, so a replay after a crash
-- writes the same rows again and merges leave one: read them with FINAL (or argMax) for exact figures.
-- A 1 s window is written early, as soon as it ends, and again when it closes (final = 1): the
-- latest emission replaces the earlier ones.

CREATE DATABASE IF NOT EXISTS weir;

-- One row per node of the hierarchy (app > system > service > endpoint) per window: 1 s windows,
-- and their roll-ups to 1 min and 1 h (sketches merged, never percentiles averaged).
-- Partitions are (window_ms, day), so retention drops whole days per resolution.
CREATE TABLE IF NOT EXISTS weir.health_metrics
(
    window_start DateTime,
    window_ms UInt32,
    level Enum8('APP' = 1, 'SYSTEM' = 2, 'SERVICE' = 3, 'ENDPOINT' = 4),
    app String,
    system String,
    service String,
    endpoint String,
    requests UInt64,
    errors UInt64,
    slow UInt64,
    latency_p50_us Float64,
    latency_p90_us Float64,
    latency_p99_us Float64,
    latency_p999_us Float64,
    latency_max_us UInt64,
    sketch String,          -- base64 of the DDSketch in sketches-proto encoding (latency in microseconds)
    final UInt8,            -- 0 for an early result of a window still open (replaced by later versions)
    emitted_at UInt64       -- the version: the latest emission of a window wins
)
ENGINE = ReplacingMergeTree(emitted_at)
PARTITION BY (window_ms, toYYYYMMDD(window_start))
ORDER BY (window_ms, level, app, system, service, endpoint, window_start);

-- Alert records, FIRING and RESOLVED, one row each per episode (id is the episode).
CREATE TABLE IF NOT EXISTS weir.health_alerts
(
    id String,
    ts DateTime,
    ts_ms UInt64,
    rule String,
    kind Enum8('BURN_RATE' = 1, 'LATENCY' = 2, 'SPIKE' = 3),
    state Enum8('FIRING' = 1, 'RESOLVED' = 2),
    severity Enum8('PAGE' = 1, 'TICKET' = 2),
    level Enum8('APP' = 1, 'SYSTEM' = 2, 'SERVICE' = 3, 'ENDPOINT' = 4),
    app String,
    system String,
    service String,
    endpoint String,
    observed Float64,
    threshold Float64,
    objective Float64,
    long_window_ms UInt64,
    short_window_ms UInt64,
    message String,
    runbook String,
    started_at UInt64,
    resolved_at UInt64,
    emitted_at UInt64
)
ENGINE = ReplacingMergeTree(emitted_at)
PARTITION BY toYYYYMM(ts)
ORDER BY (id, state);
