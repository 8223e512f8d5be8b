-- Pages fetched by a sync that has not finished yet (see supabase/migrations/*_sync_staging).
CREATE TABLE sync_staging (
    user_id       TEXT NOT NULL,
    span          TEXT NOT NULL,
    page          INTEGER NOT NULL,
    cursor_after  INTEGER NOT NULL,
    records       TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (user_id, span, page)
);
