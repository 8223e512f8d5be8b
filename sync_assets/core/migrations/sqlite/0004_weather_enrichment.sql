-- Weather enrichment: sessions of runs that only (re-)enrich ('enrichment' sync type; SQLite
-- cannot alter a CHECK, so the table is rebuilt as SQLite's documentation describes), and an
-- index for the retry query.
CREATE TABLE sync_sessions_new (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL,
    dagster_run_id       TEXT NOT NULL,
    sync_type            TEXT NOT NULL DEFAULT 'backfill'
                         CHECK (sync_type IN ('backfill', 'incremental', 'webhook', 'manual',
                                             'enrichment')),
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
INSERT INTO sync_sessions_new SELECT * FROM sync_sessions;
DROP TABLE sync_sessions;
ALTER TABLE sync_sessions_new RENAME TO sync_sessions;
CREATE INDEX sync_sessions_user_started_idx ON sync_sessions (user_id, started_at DESC);
CREATE TRIGGER sync_sessions_updated_at AFTER UPDATE ON sync_sessions FOR EACH ROW
WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE sync_sessions SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;

CREATE INDEX runs_weather_retry_idx ON runs (user_id, start_date)
    WHERE json_extract(enrichment_status, '$.weather_status') IN ('pending', 'failed');
