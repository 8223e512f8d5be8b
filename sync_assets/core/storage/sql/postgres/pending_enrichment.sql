-- Months of each user holding activities whose weather is pending, failed (retryable) or
-- skipped (a sync asked to store without it)
-- and due: what the weather retry sensor re-enriches, without asking Strava again.
select user_id::text as user_id,
       date_trunc('month', start_date_utc at time zone 'UTC') as month,
       count(*) as activities
from public.runs
where enrichment_status ->> 'weather_status' in ('pending', 'failed', 'skipped')
  and coalesce((enrichment_status ->> 'weather_retryable')::boolean, true)
  and coalesce((enrichment_status ->> 'weather_retry_after')::timestamptz, '-infinity')
      <= %(now)s
group by 1, 2
order by 1, 2
