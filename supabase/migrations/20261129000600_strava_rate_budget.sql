-- Strava's limits are per application: concurrent runs (in any process, on any machine) take
-- each request from this one row per app, atomically, instead of each guessing from headers.
create table if not exists public.strava_rate_budget (
  app             text primary key,          -- a hash of the API URL and client id
  window_15       bigint not null default 0, -- server epoch // 900
  window_day      bigint not null default 0, -- server epoch // 86400
  limit_15        integer not null default 200,
  limit_day       integer not null default 2000,
  read_limit_15   integer not null default 100,
  read_limit_day  integer not null default 1000,
  usage_15        integer not null default 0,
  usage_day       integer not null default 0,
  read_usage_15   integer not null default 0,
  read_usage_day  integer not null default 0,
  exhausted_until double precision not null default 0, -- after a 429: nothing before this
  clock_offset    double precision not null default 0, -- Strava's clock - wall clock, s
  updated_at      timestamptz not null default now()
);

alter table public.strava_rate_budget enable row level security;
revoke all on public.strava_rate_budget from anon, authenticated;
grant select, insert, update, delete on public.strava_rate_budget to sync_pipeline, service_role;
