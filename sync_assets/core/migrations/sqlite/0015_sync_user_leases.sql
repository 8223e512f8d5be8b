-- See supabase/migrations/20261202000300_sync_user_leases.sql.
CREATE TABLE sync_user_leases (
    user_id      TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    ttl_seconds  REAL NOT NULL CHECK (ttl_seconds > 0),
    acquired_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    renewed_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

ALTER TABLE sync_staging ADD COLUMN run_id TEXT;
