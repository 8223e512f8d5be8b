-- Embedded default (SQLite): the same tables as supabase/migrations, for one local user.
-- Timestamps are ISO-8601 UTC text.
CREATE TABLE runs (
    id                          TEXT PRIMARY KEY,
    user_id                     TEXT NOT NULL,
    strava_id                   INTEGER NOT NULL,
    athlete_id                  INTEGER,
    name                        TEXT NOT NULL,
    type                        TEXT,
    sport_type                  TEXT NOT NULL,
    start_date                  TEXT NOT NULL,
    start_date_local            TEXT,
    timezone                    TEXT,
    distance_meters             REAL NOT NULL CHECK (distance_meters >= 0),
    moving_time_seconds         INTEGER NOT NULL CHECK (moving_time_seconds >= 0),
    elapsed_time_seconds        INTEGER NOT NULL CHECK (elapsed_time_seconds >= 0),
    total_elevation_gain_meters REAL,
    average_speed_mps           REAL,
    max_speed_mps               REAL,
    average_heartrate_bpm       REAL,
    max_heartrate_bpm           REAL,
    start_lat                   REAL CHECK (start_lat BETWEEN -90 AND 90),
    start_lng                   REAL CHECK (start_lng BETWEEN -180 AND 180),
    end_lat                     REAL CHECK (end_lat BETWEEN -90 AND 90),
    end_lng                     REAL CHECK (end_lng BETWEEN -180 AND 180),
    manual                      INTEGER NOT NULL DEFAULT 0,
    trainer                     INTEGER NOT NULL DEFAULT 0,
    commute                     INTEGER NOT NULL DEFAULT 0,
    private                     INTEGER NOT NULL DEFAULT 0,
    visibility                  TEXT,
    city                        TEXT,
    state                       TEXT,
    country                     TEXT,
    temperature_celsius         REAL,
    feels_like_celsius          REAL,
    humidity_percent            REAL,
    pressure_hpa                REAL,
    wind_speed_mps              REAL,
    wind_direction_degrees      REAL,
    weather_condition           TEXT,
    visibility_meters           REAL,
    uv_index                    REAL,
    strava_data                 TEXT NOT NULL,
    enrichment_status           TEXT NOT NULL DEFAULT '{}',
    created_at                  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at                  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (user_id, strava_id)
);
CREATE INDEX runs_user_start_idx ON runs (user_id, start_date DESC);

CREATE TABLE sync_sessions (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL,
    dagster_run_id       TEXT NOT NULL,
    sync_type            TEXT NOT NULL DEFAULT 'backfill'
                         CHECK (sync_type IN ('backfill', 'incremental', 'webhook', 'manual')),
    status               TEXT NOT NULL DEFAULT 'initiated'
                         CHECK (status IN ('initiated', 'fetching_activities', 'enriching_weather',
                                           'storing_data', 'completed', 'failed', 'retrying',
                                           'cancelled')),
    window_start         TEXT,
    window_end           TEXT,
    activities_fetched   INTEGER NOT NULL DEFAULT 0,
    activities_enriched  INTEGER NOT NULL DEFAULT 0,
    activities_stored    INTEGER NOT NULL DEFAULT 0,
    activities_updated   INTEGER NOT NULL DEFAULT 0,
    activities_skipped   INTEGER NOT NULL DEFAULT 0,
    activities_failed    INTEGER NOT NULL DEFAULT 0,
    progress             TEXT NOT NULL DEFAULT '{}',
    last_error           TEXT,
    retry_count          INTEGER NOT NULL DEFAULT 0,
    last_successful_page INTEGER NOT NULL DEFAULT 0,
    checkpoint_data      TEXT NOT NULL DEFAULT '{}',
    started_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    completed_at         TEXT,
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (dagster_run_id, user_id)
);
CREATE INDEX sync_sessions_user_started_idx ON sync_sessions (user_id, started_at DESC);

CREATE TABLE activity_quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    strava_id   INTEGER,
    reason      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT 'validation',
    session_id  TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX activity_quarantine_dedup_idx
    ON activity_quarantine (user_id, coalesce(strava_id, -1), reason, payload);

CREATE TABLE weather_cache (
    cell_lat               REAL NOT NULL,
    cell_lng               REAL NOT NULL,
    hour_utc               TEXT NOT NULL,
    provider               TEXT NOT NULL,
    temperature_celsius    REAL,
    feels_like_celsius     REAL,
    humidity_percent       REAL,
    pressure_hpa           REAL,
    wind_speed_mps         REAL,
    wind_direction_degrees REAL,
    weather_code           INTEGER,
    weather_condition      TEXT,
    visibility_meters      REAL,
    uv_index               REAL,
    fetched_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (provider, cell_lat, cell_lng, hour_utc)
);

-- updated_at kept by triggers, as in PostgreSQL.
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
CREATE TRIGGER strava_connections_updated_at AFTER UPDATE ON strava_connections FOR EACH ROW
WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE strava_connections SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    WHERE user_id = NEW.user_id;
END;
