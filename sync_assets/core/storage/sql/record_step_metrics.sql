-- One step's metrics, written when the step ends; recorded_at is now() unless given.
insert into {schema}sync_step_metrics (
  sync_id, dagster_run_id, step, api, users, activities, seconds, api_requests, api_errors,
  api_rate_limited, api_retries, api_latency_ms_total, api_latency_ms_max, api_latency_ms_p95,
  api_quota_used, rows_written, write_seconds, db_pool_max, db_pool_waits, db_pool_wait_ms,
  db_pool_timeouts, recorded_at
) values (
  :sync_id, :dagster_run_id, :step, :api, :users, :activities, :seconds,
  :api_requests, :api_errors, :api_rate_limited, :api_retries,
  :api_latency_ms_total, :api_latency_ms_max, :api_latency_ms_p95, :api_quota_used,
  :rows_written, :write_seconds, :db_pool_max, :db_pool_waits, :db_pool_wait_ms,
  :db_pool_timeouts, coalesce(:recorded_at, {now})
)
