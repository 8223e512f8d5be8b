-- last_activity_at: SQLite's column has no default (see 0011_seed_contract.sql).
INSERT INTO sync_sessions (id, user_id, dagster_run_id, sync_type, time_range_start,
                           time_range_end, last_activity_at)
VALUES (:id, :user_id, :run_id, :sync_type, :time_range_start, :time_range_end,
        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
ON CONFLICT (dagster_run_id, user_id) DO NOTHING
