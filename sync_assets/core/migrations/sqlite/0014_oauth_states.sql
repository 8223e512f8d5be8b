-- See supabase/migrations/20261202000500_oauth_states.sql (expiry as Unix seconds here).
CREATE TABLE strava_oauth_states (
    nonce      TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    used_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX strava_oauth_states_expiry_idx ON strava_oauth_states (expires_at);
