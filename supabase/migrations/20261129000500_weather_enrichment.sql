-- Weather enrichment: sessions of runs that only (re-)enrich, and the retry sensor's query.

alter table public.sync_sessions drop constraint if exists sync_sessions_sync_type_check;
alter table public.sync_sessions add constraint sync_sessions_sync_type_check
  check (sync_type in ('backfill', 'incremental', 'webhook', 'manual', 'enrichment'));

-- Runs whose weather is still to come (pending archive days, failed requests): small.
create index if not exists runs_weather_retry_idx on public.runs (user_id, start_date)
  where enrichment_status ->> 'weather_status' in ('pending', 'failed');
