-- Activities deleted on Strava (push event `delete`). Strava never reuses an activity id, so a
-- tombstone is permanent: the merge into public.runs skips tombstoned ids, and a run that
-- fetched the activity before it was deleted (or an enrichment re-run reading older Parquet)
-- cannot bring it back. Deleted with the rest of a user's data on deauthorization.
create table if not exists public.strava_deleted_activities (
  user_id    uuid not null references auth.users (id) on delete cascade,
  strava_id  bigint not null,
  deleted_at timestamptz not null default now(),
  primary key (user_id, strava_id)
);

alter table public.strava_deleted_activities enable row level security;
alter table public.strava_deleted_activities force row level security;
revoke all on public.strava_deleted_activities from anon, authenticated;
grant select, insert, update, delete on public.strava_deleted_activities
  to sync_pipeline, service_role;
