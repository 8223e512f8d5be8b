-- See supabase/migrations/20261129000700_strava_webhook_events.sql.
CREATE TABLE strava_webhook_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER,
    object_type     TEXT NOT NULL CHECK (object_type IN ('activity', 'athlete')),
    object_id       INTEGER NOT NULL,
    aspect_type     TEXT NOT NULL CHECK (aspect_type IN ('create', 'update', 'delete')),
    owner_id        INTEGER NOT NULL,
    event_time      INTEGER NOT NULL,
    updates         TEXT NOT NULL DEFAULT '{}',
    received_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX strava_webhook_events_dedup_idx
    ON strava_webhook_events (object_type, object_id, aspect_type, owner_id, event_time);
