-- See supabase/migrations/20261129000900_deleted_activities.sql.
CREATE TABLE strava_deleted_activities (
    user_id    TEXT NOT NULL,
    strava_id  INTEGER NOT NULL,
    deleted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (user_id, strava_id)
);
