-- See supabase/migrations/20261129001100_sync_metrics.sql: the same table and views, with the
-- same names, columns and figures. Days are UTC ('YYYY-MM-DD'; timestamps are ISO-8601 UTC).
CREATE TABLE sync_step_metrics (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    sync_id              TEXT NOT NULL,
    dagster_run_id       TEXT NOT NULL,
    step                 TEXT NOT NULL,
    api                  TEXT CHECK (api IN ('strava', 'weather')),
    users                INTEGER NOT NULL DEFAULT 0,
    activities           INTEGER NOT NULL DEFAULT 0,
    seconds              REAL NOT NULL DEFAULT 0,
    api_requests         INTEGER NOT NULL DEFAULT 0,
    api_errors           INTEGER NOT NULL DEFAULT 0,
    api_rate_limited     INTEGER NOT NULL DEFAULT 0,
    api_retries          INTEGER NOT NULL DEFAULT 0,
    api_latency_ms_total REAL NOT NULL DEFAULT 0,
    api_latency_ms_max   REAL NOT NULL DEFAULT 0,
    api_latency_ms_p95   REAL,
    api_quota_used       REAL NOT NULL DEFAULT 0,
    rows_written         INTEGER NOT NULL DEFAULT 0,
    write_seconds        REAL NOT NULL DEFAULT 0,
    db_pool_max          INTEGER,
    db_pool_waits        INTEGER NOT NULL DEFAULT 0,
    db_pool_wait_ms      REAL NOT NULL DEFAULT 0,
    db_pool_timeouts     INTEGER NOT NULL DEFAULT 0,
    recorded_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX sync_step_metrics_recorded_idx ON sync_step_metrics (recorded_at);
CREATE INDEX sync_step_metrics_sync_idx ON sync_step_metrics (sync_id);

CREATE VIEW sync_success_rate AS
SELECT date(started_at) AS day,
       count(*) AS syncs,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       round(1.0 * count(*) FILTER (WHERE status = 'completed') / count(*), 4) AS success_rate
FROM sync_sessions
WHERE status IN ('completed', 'failed', 'cancelled')
GROUP BY 1;

CREATE VIEW sync_duration_by_volume AS
WITH done AS (
    SELECT CASE WHEN activities_fetched > 0 THEN activities_fetched
                ELSE activities_stored + activities_updated + activities_skipped END AS activities,
           (julianday(completed_at) - julianday(started_at)) * 86400.0 AS seconds
    FROM sync_sessions
    WHERE status = 'completed' AND completed_at IS NOT NULL
), bucketed AS (
    SELECT activities, seconds,
           CASE WHEN activities = 0 THEN 0 WHEN activities < 200 THEN 1
                WHEN activities < 1000 THEN 200 WHEN activities < 5000 THEN 1000
                ELSE 5000 END AS volume_min
    FROM done
)
SELECT CASE volume_min WHEN 0 THEN '0' WHEN 1 THEN '1-199' WHEN 200 THEN '200-999'
                       WHEN 1000 THEN '1000-4999' ELSE '5000+' END AS volume,
       volume_min,
       count(*) AS syncs,
       round(avg(seconds), 3) AS avg_seconds,
       round(max(seconds), 3) AS max_seconds,
       round(sum(seconds) * 1000 / nullif(sum(activities), 0), 3) AS seconds_per_1000_activities
FROM bucketed
GROUP BY volume_min;

-- p95_latency_ms: the highest of the steps' own p95s, an upper bound of the day's p95.
CREATE VIEW sync_api_health AS
SELECT date(recorded_at) AS day,
       api,
       sum(api_requests) AS requests,
       sum(api_errors) AS errors,
       round(1.0 * sum(api_errors) / nullif(sum(api_requests), 0), 4) AS error_rate,
       sum(api_rate_limited) AS rate_limited,
       sum(api_retries) AS retries,
       round(sum(api_latency_ms_total) / nullif(sum(api_requests), 0), 1) AS avg_latency_ms,
       round(max(api_latency_ms_max), 1) AS max_latency_ms,
       round(max(api_latency_ms_p95), 1) AS p95_latency_ms,
       round(sum(api_quota_used), 2) AS quota_used
FROM sync_step_metrics
WHERE api IS NOT NULL
GROUP BY 1, 2;

CREATE VIEW sync_write_performance AS
SELECT date(recorded_at) AS day,
       count(*) AS steps,
       sum(rows_written) AS rows_written,
       round(sum(write_seconds), 3) AS write_seconds,
       round(sum(rows_written) / nullif(sum(write_seconds), 0), 1) AS rows_per_second,
       sum(db_pool_waits) AS db_pool_waits,
       sum(db_pool_timeouts) AS db_pool_timeouts
FROM sync_step_metrics
WHERE rows_written > 0
GROUP BY 1;
