-- See supabase/migrations/20261201000700_listing_watermarks.sql.
CREATE TABLE strava_listing_watermarks (
    user_id        TEXT PRIMARY KEY,
    listed_from    TEXT NOT NULL,
    listed_through TEXT NOT NULL,
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK (listed_from <= listed_through)
);
