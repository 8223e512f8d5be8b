-- See the PostgreSQL version.
SELECT id, user_id, dagster_run_id, sync_type, status, window_start, window_end,
       activities_fetched, activities_enriched, activities_stored, activities_updated,
       activities_skipped, activities_failed, progress, last_error, retry_count,
       last_successful_page, checkpoint_data, started_at, completed_at
FROM sync_sessions
WHERE :user_id IS NULL OR user_id = :user_id
ORDER BY started_at DESC
LIMIT :limit
