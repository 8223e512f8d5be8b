-- The seed's database contract: public.runs and public.sync_sessions get every column of the
-- "Clean Slate Database Schema" of shared/design/seed-design.md (tests/data/seed_schema.sql),
-- with its name, type, default and nullability, so that a front end written against the seed
-- reads them as they are. Our own columns stay beside the seed's (tests/test_seed_contract.py
-- compares both tables column by column). No row is lost:
--
-- runs
--   renamed     start_date -> start_date_utc, start_lat/start_lng/end_lat/end_lng ->
--               start_latitude/start_longitude/end_latitude/end_longitude, average_speed_mps /
--               max_speed_mps / wind_speed_mps -> average_speed_ms / max_speed_ms / wind_speed_ms
--   new         activity_type (Strava's legacy `type`, else sport_type; NOT NULL DEFAULT 'Run'),
--               sync_session_id (the session that last wrote the row),
--               average_heartrate_bpm_precise / max_heartrate_bpm_precise (double precision:
--               the heart rates as Strava sent them, before the seed's integer rounding)
--   retyped     start_date_local timestamp -> timestamptz NOT NULL (the local wall-clock time as
--               Strava writes it, with a "Z"; the UTC start where Strava sent none); double
--               precision -> real (the seed's float4) for distances, speeds, coordinates and
--               weather; heart rates, humidity, wind direction and visibility -> integer
--               (rounded half to even); a value real or integer cannot hold becomes null
--   defaults    enrichment_status '{"weather": false, "geocoding": false}'; strava_data,
--               created_at and updated_at nullable as the seed says (the pipeline fills them)
-- sync_sessions
--   renamed     window_start / window_end -> time_range_start / time_range_end
--   new         current_phase, total_activities_estimated, error_count, last_activity_at,
--               backfilled from what each session already says
--   defaults    sync_type 'full' ('full' allowed beside ours); counters, started_at,
--               checkpoint_data, created_at and updated_at nullable as the seed says;
--               checkpoint_data without a default
--
-- Values are computed by ALTER COLUMN ... TYPE ... USING (one rewrite per table, from the old
-- row), not by UPDATE: no trigger fires, so updated_at keeps its value and no progress
-- notification goes out for the migration. Views, policies, the publication and the triggers
-- name none of the retyped columns (the sync_metrics views read sync_sessions' counters, whose
-- type stays integer); they are kept, and two are redefined below for the new columns.

-- What the seed's real and integer columns hold of a double precision value: the nearest real,
-- 0 where it is below real's smallest value (PostgreSQL's cast would refuse it), null beyond
-- real's range; the nearest integer (half to even, as the cast and Python's round()), null
-- beyond integer's range. The pipeline rounds new rows the same way (storage/base.py).
create function pg_temp.seed_real(x double precision) returns real
language sql immutable as $$
  select case when abs(x) <= power(2::float8, -150) then 0::real  -- rounds to 0 as a real
              when abs(x) > 3.4028234663852886e38 then null
              else x::real end
$$;
create function pg_temp.seed_integer(x double precision) returns integer
language sql immutable as $$
  select case when x >= -2147483648.5 and x < 2147483647.5 then x::integer end
$$;

-- runs ----------------------------------------------------------------------------------------
alter table public.runs rename column start_date to start_date_utc;
alter table public.runs rename column start_lat to start_latitude;
alter table public.runs rename column start_lng to start_longitude;
alter table public.runs rename column end_lat to end_latitude;
alter table public.runs rename column end_lng to end_longitude;
alter table public.runs rename column average_speed_mps to average_speed_ms;
alter table public.runs rename column max_speed_mps to max_speed_ms;
alter table public.runs rename column wind_speed_mps to wind_speed_ms;
alter table public.runs rename constraint runs_start_lat_check to runs_start_latitude_check;
alter table public.runs rename constraint runs_start_lng_check to runs_start_longitude_check;
alter table public.runs rename constraint runs_end_lat_check to runs_end_latitude_check;
alter table public.runs rename constraint runs_end_lng_check to runs_end_longitude_check;

alter table public.runs
  add column activity_type                 text,
  add column average_heartrate_bpm_precise double precision,
  add column max_heartrate_bpm_precise     double precision,
  add column sync_session_id               uuid
    references public.sync_sessions (id) on delete set null;

alter table public.runs
  alter column activity_type type text using coalesce(type, sport_type, 'Run'),
  alter column activity_type set default 'Run',
  alter column activity_type set not null,
  alter column average_heartrate_bpm_precise type double precision using average_heartrate_bpm,
  alter column max_heartrate_bpm_precise type double precision using max_heartrate_bpm,
  alter column average_heartrate_bpm type integer
    using pg_temp.seed_integer(average_heartrate_bpm),
  alter column max_heartrate_bpm type integer using pg_temp.seed_integer(max_heartrate_bpm),
  alter column start_date_local type timestamptz
    using coalesce(start_date_local at time zone 'UTC', start_date_utc),
  alter column start_date_local set not null,
  alter column distance_meters type real using pg_temp.seed_real(distance_meters),
  alter column total_elevation_gain_meters type real
    using pg_temp.seed_real(total_elevation_gain_meters),
  alter column average_speed_ms type real using pg_temp.seed_real(average_speed_ms),
  alter column max_speed_ms type real using pg_temp.seed_real(max_speed_ms),
  alter column start_latitude type real using pg_temp.seed_real(start_latitude),
  alter column start_longitude type real using pg_temp.seed_real(start_longitude),
  alter column end_latitude type real using pg_temp.seed_real(end_latitude),
  alter column end_longitude type real using pg_temp.seed_real(end_longitude),
  alter column temperature_celsius type real using pg_temp.seed_real(temperature_celsius),
  alter column feels_like_celsius type real using pg_temp.seed_real(feels_like_celsius),
  alter column humidity_percent type integer using pg_temp.seed_integer(humidity_percent),
  alter column pressure_hpa type real using pg_temp.seed_real(pressure_hpa),
  alter column wind_speed_ms type real using pg_temp.seed_real(wind_speed_ms),
  alter column wind_direction_degrees type integer
    using pg_temp.seed_integer(wind_direction_degrees),
  alter column visibility_meters type integer using pg_temp.seed_integer(visibility_meters),
  alter column uv_index type real using pg_temp.seed_real(uv_index),
  alter column enrichment_status set default '{"weather": false, "geocoding": false}'::jsonb,
  alter column strava_data drop not null,
  alter column created_at drop not null,
  alter column updated_at drop not null;

-- Deleting a session (a deauthorized user's data) sets its runs' sync_session_id to null.
create index if not exists runs_sync_session_idx on public.runs (sync_session_id)
  where sync_session_id is not null;

-- sync_sessions --------------------------------------------------------------------------------
alter table public.sync_sessions rename column window_start to time_range_start;
alter table public.sync_sessions rename column window_end to time_range_end;
alter table public.sync_sessions drop constraint if exists sync_sessions_sync_type_check;

alter table public.sync_sessions
  add column current_phase              text,
  add column total_activities_estimated integer,
  add column error_count                integer,
  add column last_activity_at           timestamptz;

-- Backfills: the phase the session is in (or failed in) from its state and progress; the total
-- the listing gave (the rows handled, for a weather re-run that listed nothing); the failed
-- activities plus the failure in last_error; the last write.
alter table public.sync_sessions
  alter column current_phase type text using (
    case when status = 'completed' then 'completed'
         else case coalesce(progress ->> 'phase', status)
                when 'enriching_weather' then 'enriching'
                when 'storing_data' then 'storing'
                when 'completed' then 'completed'
                else 'fetching' end
    end),
  alter column current_phase set default 'fetching',
  alter column current_phase set not null,
  alter column total_activities_estimated type integer using (
    case when activities_fetched > 0 then activities_fetched
         else activities_stored + activities_updated + activities_skipped end),
  alter column total_activities_estimated set default 0,
  alter column error_count type integer
    using activities_failed + (last_error is not null)::integer,
  alter column error_count set default 0,
  alter column last_activity_at type timestamptz using updated_at,
  alter column last_activity_at set default now(),
  alter column sync_type set default 'full',
  alter column activities_fetched drop not null,
  alter column activities_enriched drop not null,
  alter column activities_stored drop not null,
  alter column activities_failed drop not null,
  alter column retry_count drop not null,
  alter column started_at drop not null,
  alter column last_successful_page drop not null,
  alter column checkpoint_data drop not null,
  alter column checkpoint_data drop default,
  alter column created_at drop not null,
  alter column updated_at drop not null,
  add constraint sync_sessions_sync_type_check
    check (sync_type in ('full', 'backfill', 'incremental', 'webhook', 'manual', 'enrichment')),
  add constraint sync_sessions_current_phase_check
    check (current_phase in ('fetching', 'enriching', 'storing', 'completed'));

drop function pg_temp.seed_real(double precision);
drop function pg_temp.seed_integer(double precision);

-- A session's counters may now be null (the seed's columns are nullable): the duration view
-- reads a null as 0, as the pipeline does. Same columns as in 20261129001100_sync_metrics.sql.
create or replace view public.sync_duration_by_volume with (security_invoker = true) as
with done as (
  select case when coalesce(activities_fetched, 0) > 0 then activities_fetched
              else coalesce(activities_stored, 0) + activities_updated + activities_skipped
         end as activities,
         extract(epoch from completed_at - started_at)::float8 as seconds
  from public.sync_sessions
  where status = 'completed' and completed_at is not null and started_at is not null
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

-- The progress notification (20261129001000_sync_progress_notify.sql) carries the seed's
-- progress columns too: the phase, the estimated total, the error count, the last activity.
create or replace function public.notify_sync_session() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify(
    'sync_sessions',
    json_build_object(
      'id', new.id,
      'user_id', new.user_id,
      'dagster_run_id', new.dagster_run_id,
      'sync_type', new.sync_type,
      'status', new.status,
      'current_phase', new.current_phase,
      'progress', new.progress,
      'total_activities_estimated', new.total_activities_estimated,
      'activities_fetched', new.activities_fetched,
      'activities_enriched', new.activities_enriched,
      'activities_stored', new.activities_stored,
      'activities_failed', new.activities_failed,
      'error_count', new.error_count,
      'last_activity_at', new.last_activity_at,
      'updated_at', new.updated_at
    )::text
  );
  return null;
end;
$$;
revoke all on function public.notify_sync_session() from public, anon, authenticated;
