-- See the PostgreSQL version.
SELECT sync_id, dagster_run_id, step, api, users, activities, seconds, api_requests, api_errors,
       api_rate_limited, api_retries, api_latency_ms_total, api_latency_ms_max,
       api_latency_ms_p95, api_quota_used, rows_written, write_seconds, db_pool_max,
       db_pool_waits, db_pool_wait_ms, db_pool_timeouts, recorded_at
FROM sync_step_metrics
WHERE recorded_at >= :since
  AND (:api IS NULL OR api = :api)
  AND (:step IS NULL OR step = :step)
  AND (:sync_id IS NULL OR sync_id = :sync_id)
ORDER BY recorded_at, id
