-- How far each user's Strava activities are known to be listed completely: the watermark an
-- incremental sync lists from (sync_assets/core/incremental.py). `listed_through` is when an
-- uninterrupted, complete listing of a window reaching the present started, written only once
-- its rows were stored and checked; `listed_from` is where the listings it continues began.
-- Every activity with a start in [listed_from, listed_through) that Strava had when the
-- listing started is in public.runs (or was deleted since). Pipeline-only, deleted with the
-- rest of a user's data on deauthorization.
create table if not exists public.strava_listing_watermarks (
  user_id        uuid primary key references auth.users (id) on delete cascade,
  listed_from    timestamptz not null,
  listed_through timestamptz not null,
  updated_at     timestamptz not null default now(),
  check (listed_from <= listed_through)
);

alter table public.strava_listing_watermarks enable row level security;
alter table public.strava_listing_watermarks force row level security;
revoke all on public.strava_listing_watermarks from anon, authenticated;
grant select, insert, update, delete on public.strava_listing_watermarks
  to sync_pipeline, service_role;
