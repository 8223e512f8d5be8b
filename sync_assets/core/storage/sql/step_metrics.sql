-- Step metrics recorded at or after `since`, oldest first, of one API, step or sync if given.
select sync_id, dagster_run_id, step, api, users, activities, seconds, api_requests, api_errors,
       api_rate_limited, api_retries, api_latency_ms_total, api_latency_ms_max,
       api_latency_ms_p95, api_quota_used, rows_written, write_seconds, db_pool_max,
       db_pool_waits, db_pool_wait_ms, db_pool_timeouts, recorded_at
from {schema}sync_step_metrics
where recorded_at >= :since
  and (:api{::text} is null or api = :api{::text})
  and (:step{::text} is null or step = :step{::text})
  and (:sync_id{::text} is null or sync_id = :sync_id{::text})
order by recorded_at, id
