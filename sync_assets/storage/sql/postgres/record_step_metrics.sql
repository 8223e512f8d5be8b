-- One step's metrics, written when the step ends; recorded_at is now() unless given.
insert into public.sync_step_metrics (
  sync_id, dagster_run_id, step, api, users, activities, seconds, api_requests, api_errors,
  api_rate_limited, api_retries, api_latency_ms_total, api_latency_ms_max, api_latency_ms_p95,
  api_quota_used, rows_written, write_seconds, db_pool_max, db_pool_waits, db_pool_wait_ms,
  db_pool_timeouts, recorded_at
) values (
  %(sync_id)s, %(dagster_run_id)s, %(step)s, %(api)s, %(users)s, %(activities)s, %(seconds)s,
  %(api_requests)s, %(api_errors)s, %(api_rate_limited)s, %(api_retries)s,
  %(api_latency_ms_total)s, %(api_latency_ms_max)s, %(api_latency_ms_p95)s, %(api_quota_used)s,
  %(rows_written)s, %(write_seconds)s, %(db_pool_max)s, %(db_pool_waits)s, %(db_pool_wait_ms)s,
  %(db_pool_timeouts)s, coalesce(%(recorded_at)s, now())
)
