-- `skipped` weather (a sync run with `skip_weather_enrichment`, sync_assets/sync_request.py) is
-- filled in later like `pending` and `failed`: the weather retry sensor's query
-- (pending_enrichment.sql) lists the three, and the partial index follows it so the query
-- still reads only the rows waiting for their weather (on the column's name since the seed
-- contract, start_date_utc).
drop index if exists public.runs_weather_retry_idx;
create index if not exists runs_weather_retry_idx on public.runs (user_id, start_date_utc)
  where enrichment_status ->> 'weather_status' in ('pending', 'failed', 'skipped');
