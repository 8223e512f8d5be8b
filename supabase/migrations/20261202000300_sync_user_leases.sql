-- One run per user at a time (README: "One run per user"). A run holds its user here from its
-- first step to its end; another run of the same user waits until the row is free: released,
-- held by a run that Dagster says has ended, or not renewed for `ttl_seconds` (its process
-- died). The heartbeat of a working step renews `renewed_at`; times are the database's clock.
-- A row, not a session advisory lock: it works behind PgBouncer/Supavisor in transaction mode
-- and survives a dropped connection. Pipeline-only.
create table if not exists public.sync_user_leases (
  user_id      uuid primary key,
  run_id       text not null,            -- the holder: the Dagster run (a re-execution's root)
  ttl_seconds  double precision not null check (ttl_seconds > 0),
  acquired_at  timestamptz not null default now(),
  renewed_at   timestamptz not null default now()
);

alter table public.sync_user_leases enable row level security;
alter table public.sync_user_leases force row level security;
revoke all on public.sync_user_leases from anon, authenticated;
grant select, insert, update, delete on public.sync_user_leases to sync_pipeline, service_role;

-- The run whose listing staged each page: pages are written and adopted only by the run that
-- holds the user above, so a run never resumes from pages another run is still writing.
alter table public.sync_staging add column if not exists run_id text;
