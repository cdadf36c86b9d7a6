-- What people and the notifier did about health alerts (pipelines/alerts): acknowledgements,
-- resolutions by hand, notes, and each webhook notification sent or given up. The console's Alerts page
-- reads them with the alerts of weir.health_alerts to draw each alert's timeline and the report after
-- an event. Applied by `weir migrate` and `weir stack up`. Written for ClickHouse 18.16 and later.
--
-- An action's id is random (a person may acknowledge twice) and its row is written once; the sorting
-- key makes a retried insert of the same row collapse when parts merge.

CREATE DATABASE IF NOT EXISTS weir;

CREATE TABLE IF NOT EXISTS weir.alert_actions
(
    alert_id String,              -- the episode's id (weir.health_alerts.id)
    ts DateTime,
    ts_ms UInt64,                 -- when it was done, milliseconds since the epoch
    action Enum8('ACK' = 1, 'RESOLVE' = 2, 'NOTE' = 3, 'NOTIFIED' = 4, 'NOTIFY_FAILED' = 5),
    actor String,                 -- the token's name, or the receiver's
    note String,
    service String,               -- the alert's service: a token limited to services sees only theirs
    id String                     -- the action's own id
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (alert_id, ts_ms, id);
