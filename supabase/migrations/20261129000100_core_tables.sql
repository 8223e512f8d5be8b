-- sync_assets: the tables the pipeline writes and the app reads.
-- Units are in the column names (meters, seconds, m/s, bpm, celsius, hPa, percent).

create extension if not exists pgcrypto;  -- gen_random_uuid() (built in since PG 13, kept for 12)

-- Keeps updated_at honest whoever writes the row.
create or replace function public.set_updated_at() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

-- One row per athlete connection: tokens are Fernet ciphertexts, never plain text.
create table if not exists public.strava_connections (
  user_id                 uuid primary key references auth.users (id) on delete cascade,
  athlete_id              bigint unique,
  scopes                  text,
  access_token_encrypted  text not null,
  refresh_token_encrypted text not null,
  expires_at              timestamptz not null,
  status                  text not null default 'active'
                          check (status in ('active', 'revoked', 'deauthorized')),
  status_reason           text,
  last_sync_cursor        timestamptz,
  created_at              timestamptz not null default now(),
  updated_at              timestamptz not null default now()
);

create table if not exists public.runs (
  id                          uuid primary key default gen_random_uuid(),
  user_id                     uuid not null references auth.users (id) on delete cascade,
  strava_id                   bigint not null,
  athlete_id                  bigint,
  name                        text not null,
  type                        text,
  sport_type                  text not null,
  start_date                  timestamptz not null,
  start_date_local            timestamp,
  timezone                    text,
  distance_meters             double precision not null check (distance_meters >= 0),
  moving_time_seconds         integer not null check (moving_time_seconds >= 0),
  elapsed_time_seconds        integer not null check (elapsed_time_seconds >= 0),
  total_elevation_gain_meters double precision,
  average_speed_mps           double precision,
  max_speed_mps               double precision,
  average_heartrate_bpm       double precision,
  max_heartrate_bpm           double precision,
  start_lat                   double precision check (start_lat between -90 and 90),
  start_lng                   double precision check (start_lng between -180 and 180),
  end_lat                     double precision check (end_lat between -90 and 90),
  end_lng                     double precision check (end_lng between -180 and 180),
  manual                      boolean not null default false,
  trainer                     boolean not null default false,
  commute                     boolean not null default false,
  private                     boolean not null default false,
  visibility                  text,
  -- Place and weather at the start (filled by enrichment; null where unknown, never invented).
  city                        text,
  state                       text,
  country                     text,
  temperature_celsius         double precision,
  feels_like_celsius          double precision,
  humidity_percent            double precision,
  pressure_hpa                double precision,
  wind_speed_mps              double precision,
  wind_direction_degrees      double precision,
  weather_condition           text,
  visibility_meters           double precision,
  uv_index                    double precision,
  strava_data                 jsonb not null,          -- the full SummaryActivity, verbatim
  enrichment_status           jsonb not null default '{}'::jsonb,
  created_at                  timestamptz not null default now(),
  updated_at                  timestamptz not null default now(),
  unique (user_id, strava_id)
);
-- The app's main query: a user's runs, newest first.
create index if not exists runs_user_start_idx on public.runs (user_id, start_date desc);

create table if not exists public.sync_sessions (
  id                     uuid primary key default gen_random_uuid(),
  user_id                uuid not null references auth.users (id) on delete cascade,
  dagster_run_id         text not null,
  sync_type              text not null default 'backfill'
                         check (sync_type in ('backfill', 'incremental', 'webhook', 'manual')),
  status                 text not null default 'initiated'
                         check (status in ('initiated', 'fetching_activities', 'enriching_weather',
                                           'storing_data', 'completed', 'failed', 'retrying',
                                           'cancelled')),
  window_start           timestamptz,
  window_end             timestamptz,
  activities_fetched     integer not null default 0,
  activities_enriched    integer not null default 0,
  activities_stored      integer not null default 0,
  activities_updated     integer not null default 0,
  activities_skipped     integer not null default 0,
  activities_failed      integer not null default 0,
  progress               jsonb not null default '{}'::jsonb,
  last_error             jsonb,
  retry_count            integer not null default 0,
  last_successful_page   integer not null default 0,
  checkpoint_data        jsonb not null default '{}'::jsonb,
  started_at             timestamptz not null default now(),
  completed_at           timestamptz,
  created_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now(),
  unique (dagster_run_id, user_id)  -- a run over several users keeps one session per user
);
-- The app's progress query: a user's latest sessions.
create index if not exists sync_sessions_user_started_idx
  on public.sync_sessions (user_id, started_at desc);
create index if not exists sync_sessions_open_idx on public.sync_sessions (status)
  where status not in ('completed', 'failed', 'cancelled');

-- Activities that failed validation or storage, kept whole with the reason.
create table if not exists public.activity_quarantine (
  id             bigint generated always as identity primary key,
  user_id        uuid not null references auth.users (id) on delete cascade,
  strava_id      bigint,
  reason         text not null,
  payload        text not null,
  source         text not null default 'validation',
  session_id     uuid references public.sync_sessions (id) on delete set null,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now()
);
-- One quarantine entry per activity and reason: re-running a sync adds nothing.
create unique index if not exists activity_quarantine_dedup_idx
  on public.activity_quarantine (user_id, coalesce(strava_id, -1), md5(reason), md5(payload));

-- Historical weather shared by all users: one row per location cell and UTC hour.
create table if not exists public.weather_cache (
  cell_lat               numeric(6, 2) not null,
  cell_lng               numeric(6, 2) not null,
  hour_utc               timestamptz not null,
  provider               text not null,
  temperature_celsius    double precision,
  feels_like_celsius     double precision,
  humidity_percent       double precision,
  pressure_hpa           double precision,
  wind_speed_mps         double precision,
  wind_direction_degrees double precision,
  weather_code           integer,
  weather_condition      text,
  visibility_meters      double precision,
  uv_index               double precision,
  fetched_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now(),
  primary key (provider, cell_lat, cell_lng, hour_utc)
);

do $$
declare t text;
begin
  foreach t in array array['strava_connections', 'runs', 'sync_sessions', 'activity_quarantine',
                           'weather_cache']
  loop
    execute format('drop trigger if exists set_updated_at on public.%I', t);
    execute format('create trigger set_updated_at before update on public.%I '
                   'for each row execute function public.set_updated_at()', t);
  end loop;
end;
$$;
