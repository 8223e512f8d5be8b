-- Sync metrics: one row per Dagster step (asset) of a sync, written when the step ends, and
-- four views over it and sync_sessions that answer "how are the syncs doing" in SQL:
--   sync_success_rate       finished sessions per UTC day: completed / failed / cancelled
--   sync_duration_by_volume completed sessions' duration by how many activities they handled
--   sync_api_health         Strava and weather API requests, errors, latency, quota per day
--   sync_write_performance  rows written to the database per second, pool waits, per day
-- App-wide operator data (no user id): pipeline-only, like weather_cache. The views run with
-- the reader's rights (security_invoker), so they show nothing the reader could not select
-- from the tables themselves.
create table if not exists public.sync_step_metrics (
  id                   bigint generated always as identity primary key,
  sync_id              text not null,            -- the root run (sync_sessions.dagster_run_id)
  dagster_run_id       text not null,            -- this run (a re-execution has its own)
  step                 text not null,            -- the asset
  api                  text check (api in ('strava', 'weather')),
  users                integer not null default 0,
  activities           integer not null default 0,  -- activities the step handled
  seconds              double precision not null default 0,
  api_requests         integer not null default 0,  -- HTTP attempts on the wire, retries too
  api_errors           integer not null default 0,  -- network errors, 5xx, 429, broken bodies
  api_rate_limited     integer not null default 0,  -- 429 answers
  api_retries          integer not null default 0,
  api_latency_ms_total double precision not null default 0,
  api_latency_ms_max   double precision not null default 0,
  api_latency_ms_p95   double precision,
  api_quota_used       double precision not null default 0,  -- Strava requests, Open-Meteo calls
  rows_written         integer not null default 0,
  write_seconds        double precision not null default 0,
  db_pool_max          integer,
  db_pool_waits        integer not null default 0,  -- requests that waited for a connection
  db_pool_wait_ms      double precision not null default 0,
  db_pool_timeouts     integer not null default 0,
  recorded_at          timestamptz not null default now()
);
create index if not exists sync_step_metrics_recorded_idx
  on public.sync_step_metrics (recorded_at);
create index if not exists sync_step_metrics_sync_idx on public.sync_step_metrics (sync_id);

-- Finished sessions (one per user and sync) per UTC day of their start.
create or replace view public.sync_success_rate with (security_invoker = true) as
select (started_at at time zone 'utc')::date as day,
       count(*) as syncs,
       count(*) filter (where status = 'completed') as completed,
       count(*) filter (where status = 'failed') as failed,
       count(*) filter (where status = 'cancelled') as cancelled,
       round(count(*) filter (where status = 'completed')::numeric / count(*), 4)::float8
         as success_rate
from public.sync_sessions
where status in ('completed', 'failed', 'cancelled')
group by 1;

-- Completed sessions by volume: the activities Strava listed (activities_fetched); a session
-- that fetched nothing (weather re-enrichment reads Parquet, not Strava) counts the rows it
-- stored, updated or found unchanged. Duration: started_at to completed_at, so a session
-- re-executed after a failure counts the whole time until it completed.
create or replace view public.sync_duration_by_volume with (security_invoker = true) as
with done as (
  select case when activities_fetched > 0 then activities_fetched
              else activities_stored + activities_updated + activities_skipped end as activities,
         extract(epoch from completed_at - started_at)::float8 as seconds
  from public.sync_sessions
  where status = 'completed' and completed_at is not null
), bucketed as (
  select activities, seconds,
         case when activities = 0 then 0 when activities < 200 then 1
              when activities < 1000 then 200 when activities < 5000 then 1000
              else 5000 end as volume_min
  from done
)
select case volume_min when 0 then '0' when 1 then '1-199' when 200 then '200-999'
                       when 1000 then '1000-4999' else '5000+' end as volume,
       volume_min,
       count(*) as syncs,
       round(avg(seconds)::numeric, 3)::float8 as avg_seconds,
       round(max(seconds)::numeric, 3)::float8 as max_seconds,
       round((sum(seconds) * 1000 / nullif(sum(activities), 0))::numeric, 3)::float8
         as seconds_per_1000_activities
from bucketed
group by volume_min;

-- API requests per UTC day and API. p95_latency_ms is the highest of the steps' own p95s: an
-- upper bound of the day's p95 (percentiles of steps do not combine into the day's).
create or replace view public.sync_api_health with (security_invoker = true) as
select (recorded_at at time zone 'utc')::date as day,
       api,
       sum(api_requests) as requests,
       sum(api_errors) as errors,
       round(sum(api_errors)::numeric / nullif(sum(api_requests), 0), 4)::float8 as error_rate,
       sum(api_rate_limited) as rate_limited,
       sum(api_retries) as retries,
       round((sum(api_latency_ms_total) / nullif(sum(api_requests), 0))::numeric, 1)::float8
         as avg_latency_ms,
       round(max(api_latency_ms_max)::numeric, 1)::float8 as max_latency_ms,
       round(max(api_latency_ms_p95)::numeric, 1)::float8 as p95_latency_ms,
       round(sum(api_quota_used)::numeric, 2)::float8 as quota_used
from public.sync_step_metrics
where api is not null
group by 1, 2;

-- Database writes per UTC day, from the steps that wrote rows.
create or replace view public.sync_write_performance with (security_invoker = true) as
select (recorded_at at time zone 'utc')::date as day,
       count(*) as steps,
       sum(rows_written) as rows_written,
       round(sum(write_seconds)::numeric, 3)::float8 as write_seconds,
       round((sum(rows_written) / nullif(sum(write_seconds), 0))::numeric, 1)::float8
         as rows_per_second,
       sum(db_pool_waits) as db_pool_waits,
       sum(db_pool_timeouts) as db_pool_timeouts
from public.sync_step_metrics
where rows_written > 0
group by 1;

-- Pipeline-only, as weather_cache (20261129000200_row_level_security.sql and
-- 20261129000800_security_hardening.sql): RLS on and forced, no policy, nothing for anon or
-- authenticated (Supabase's default privileges grant every new table, view and sequence to both).
alter table public.sync_step_metrics enable row level security;
alter table public.sync_step_metrics force row level security;
revoke all on public.sync_step_metrics, public.sync_success_rate, public.sync_duration_by_volume,
              public.sync_api_health, public.sync_write_performance from anon, authenticated;
revoke all on sequence public.sync_step_metrics_id_seq from anon, authenticated;
grant select, insert, update, delete on public.sync_step_metrics to sync_pipeline, service_role;
grant select on public.sync_success_rate, public.sync_duration_by_volume, public.sync_api_health,
      public.sync_write_performance to sync_pipeline, service_role;
grant usage on sequence public.sync_step_metrics_id_seq to sync_pipeline, service_role;
