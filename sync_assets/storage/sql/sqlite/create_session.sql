INSERT INTO sync_sessions (id, user_id, dagster_run_id, sync_type, window_start, window_end)
VALUES (:id, :user_id, :run_id, :sync_type, :window_start, :window_end)
ON CONFLICT (dagster_run_id, user_id) DO NOTHING
