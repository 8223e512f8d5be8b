-- See supabase/migrations/20261129000600_strava_rate_budget.sql.
CREATE TABLE strava_rate_budget (
    app             TEXT PRIMARY KEY,
    window_15       INTEGER NOT NULL DEFAULT 0,
    window_day      INTEGER NOT NULL DEFAULT 0,
    limit_15        INTEGER NOT NULL DEFAULT 200,
    limit_day       INTEGER NOT NULL DEFAULT 2000,
    read_limit_15   INTEGER NOT NULL DEFAULT 100,
    read_limit_day  INTEGER NOT NULL DEFAULT 1000,
    usage_15        INTEGER NOT NULL DEFAULT 0,
    usage_day       INTEGER NOT NULL DEFAULT 0,
    read_usage_15   INTEGER NOT NULL DEFAULT 0,
    read_usage_day  INTEGER NOT NULL DEFAULT 0,
    exhausted_until REAL NOT NULL DEFAULT 0,
    clock_offset    REAL NOT NULL DEFAULT 0,
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
