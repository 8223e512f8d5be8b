-- Embedded default (SQLite): the Strava connections of this machine's user(s).
-- Mirrors public.strava_connections of the Supabase schema, without RLS (one local user);
-- tokens are Fernet ciphertexts, as in PostgreSQL.
CREATE TABLE IF NOT EXISTS strava_connections (
    user_id                 TEXT PRIMARY KEY,
    athlete_id              INTEGER,
    scopes                  TEXT,
    access_token_encrypted  TEXT NOT NULL,
    refresh_token_encrypted TEXT NOT NULL,
    expires_at              INTEGER NOT NULL,
    status                  TEXT NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'revoked', 'deauthorized')),
    status_reason           TEXT,
    last_sync_cursor        TEXT,
    created_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at              TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
