-- The seed's column names (see supabase/migrations/20261201000200_seed_contract.sql): renamed
-- in place (RENAME COLUMN rewrites the indexes and CHECKs that name them), new columns added.
-- SQLite keeps its own types; values are rounded as PostgreSQL's real and integer columns hold
-- them (integers half to even, as Python's round()). The updated_at triggers are dropped while
-- the rows are backfilled, so updated_at keeps its value, and created again.
DROP TRIGGER runs_updated_at;
DROP TRIGGER sync_sessions_updated_at;

-- runs ------------------------------------------------------------------------------------------
ALTER TABLE runs RENAME COLUMN start_date TO start_date_utc;
ALTER TABLE runs RENAME COLUMN start_lat TO start_latitude;
ALTER TABLE runs RENAME COLUMN start_lng TO start_longitude;
ALTER TABLE runs RENAME COLUMN end_lat TO end_latitude;
ALTER TABLE runs RENAME COLUMN end_lng TO end_longitude;
ALTER TABLE runs RENAME COLUMN average_speed_mps TO average_speed_ms;
ALTER TABLE runs RENAME COLUMN max_speed_mps TO max_speed_ms;
ALTER TABLE runs RENAME COLUMN wind_speed_mps TO wind_speed_ms;
-- The heart rates as Strava sent them stay in *_precise; the seed's columns hold integers.
ALTER TABLE runs RENAME COLUMN average_heartrate_bpm TO average_heartrate_bpm_precise;
ALTER TABLE runs RENAME COLUMN max_heartrate_bpm TO max_heartrate_bpm_precise;
ALTER TABLE runs ADD COLUMN average_heartrate_bpm INTEGER;
ALTER TABLE runs ADD COLUMN max_heartrate_bpm INTEGER;
ALTER TABLE runs ADD COLUMN activity_type TEXT NOT NULL DEFAULT 'Run';
ALTER TABLE runs ADD COLUMN sync_session_id TEXT REFERENCES sync_sessions (id) ON DELETE SET NULL;

-- Half to even: 2 * round(x / 2) at an exact tie (SQLite's round() goes away from zero).
UPDATE runs SET
    activity_type = coalesce(type, sport_type, 'Run'),
    start_date_local = CASE
        WHEN start_date_local IS NULL THEN start_date_utc
        WHEN start_date_local LIKE '%Z' THEN start_date_local
        ELSE start_date_local || 'Z' END,  -- the local wall-clock time, written as Strava does
    average_heartrate_bpm = CAST(CASE
        WHEN abs(average_heartrate_bpm_precise - CAST(average_heartrate_bpm_precise AS INTEGER))
             = 0.5 THEN 2 * round(average_heartrate_bpm_precise / 2.0)
        ELSE round(average_heartrate_bpm_precise) END AS INTEGER),
    max_heartrate_bpm = CAST(CASE
        WHEN abs(max_heartrate_bpm_precise - CAST(max_heartrate_bpm_precise AS INTEGER)) = 0.5
        THEN 2 * round(max_heartrate_bpm_precise / 2.0)
        ELSE round(max_heartrate_bpm_precise) END AS INTEGER),
    humidity_percent = CAST(CASE
        WHEN abs(humidity_percent - CAST(humidity_percent AS INTEGER)) = 0.5
        THEN 2 * round(humidity_percent / 2.0)
        ELSE round(humidity_percent) END AS INTEGER),
    wind_direction_degrees = CAST(CASE
        WHEN abs(wind_direction_degrees - CAST(wind_direction_degrees AS INTEGER)) = 0.5
        THEN 2 * round(wind_direction_degrees / 2.0)
        ELSE round(wind_direction_degrees) END AS INTEGER),
    visibility_meters = CAST(CASE
        WHEN abs(visibility_meters - CAST(visibility_meters AS INTEGER)) = 0.5
        THEN 2 * round(visibility_meters / 2.0)
        ELSE round(visibility_meters) END AS INTEGER);

CREATE INDEX runs_sync_session_idx ON runs (sync_session_id) WHERE sync_session_id IS NOT NULL;

-- sync_sessions ----------------------------------------------------------------------------------
ALTER TABLE sync_sessions RENAME COLUMN window_start TO time_range_start;
ALTER TABLE sync_sessions RENAME COLUMN window_end TO time_range_end;
ALTER TABLE sync_sessions ADD COLUMN current_phase TEXT NOT NULL DEFAULT 'fetching'
    CHECK (current_phase IN ('fetching', 'enriching', 'storing', 'completed'));
ALTER TABLE sync_sessions ADD COLUMN total_activities_estimated INTEGER DEFAULT 0;
ALTER TABLE sync_sessions ADD COLUMN error_count INTEGER DEFAULT 0;
-- SQLite adds no column with a non-constant default: create_session.sql writes the first value.
ALTER TABLE sync_sessions ADD COLUMN last_activity_at TEXT;

UPDATE sync_sessions SET
    current_phase = CASE
        WHEN status = 'completed' THEN 'completed'
        ELSE CASE coalesce(json_extract(progress, '$.phase'), status)
            WHEN 'enriching_weather' THEN 'enriching'
            WHEN 'storing_data' THEN 'storing'
            WHEN 'completed' THEN 'completed'
            ELSE 'fetching' END
        END,
    total_activities_estimated = CASE
        WHEN activities_fetched > 0 THEN activities_fetched
        ELSE activities_stored + activities_updated + activities_skipped END,
    error_count = activities_failed + (last_error IS NOT NULL),
    last_activity_at = updated_at;

-- A null counter reads as 0 (see the PostgreSQL version).
DROP VIEW sync_duration_by_volume;
CREATE VIEW sync_duration_by_volume AS
WITH done AS (
    SELECT CASE WHEN coalesce(activities_fetched, 0) > 0 THEN activities_fetched
                ELSE coalesce(activities_stored, 0) + activities_updated + activities_skipped
           END AS activities,
           (julianday(completed_at) - julianday(started_at)) * 86400.0 AS seconds
    FROM sync_sessions
    WHERE status = 'completed' AND completed_at IS NOT NULL AND started_at IS NOT NULL
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

-- updated_at kept by triggers again (as in 0002_runs_and_sessions.sql).
CREATE TRIGGER runs_updated_at AFTER UPDATE ON runs FOR EACH ROW
WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE runs SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
CREATE TRIGGER sync_sessions_updated_at AFTER UPDATE ON sync_sessions FOR EACH ROW
WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE sync_sessions SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
