-- Row Level Security: a signed-in user reads only their own rows and writes nothing directly;
-- the pipeline writes as service_role (BYPASSRLS in Supabase) or as the sync_pipeline role.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'sync_pipeline') then
    create role sync_pipeline nologin bypassrls;
  end if;
end;
$$;

alter table public.strava_connections  enable row level security;
alter table public.runs                enable row level security;
alter table public.sync_sessions       enable row level security;
alter table public.activity_quarantine enable row level security;
alter table public.weather_cache       enable row level security;

-- Force RLS on the table owner too, so that only roles with BYPASSRLS skip the policies.
alter table public.strava_connections  force row level security;
alter table public.runs                force row level security;
alter table public.sync_sessions       force row level security;
alter table public.activity_quarantine force row level security;

revoke all on public.strava_connections, public.runs, public.sync_sessions,
              public.activity_quarantine, public.weather_cache from anon, authenticated;

grant select on public.runs, public.sync_sessions, public.activity_quarantine to authenticated;
-- strava_connections: the user may see that a connection exists and its state, never tokens.
grant select (user_id, athlete_id, scopes, status, status_reason, last_sync_cursor, created_at,
              updated_at) on public.strava_connections to authenticated;

drop policy if exists runs_owner_read on public.runs;
create policy runs_owner_read on public.runs
  for select to authenticated using (user_id = auth.uid());

drop policy if exists sync_sessions_owner_read on public.sync_sessions;
create policy sync_sessions_owner_read on public.sync_sessions
  for select to authenticated using (user_id = auth.uid());

drop policy if exists quarantine_owner_read on public.activity_quarantine;
create policy quarantine_owner_read on public.activity_quarantine
  for select to authenticated using (user_id = auth.uid());

drop policy if exists connections_owner_read on public.strava_connections;
create policy connections_owner_read on public.strava_connections
  for select to authenticated using (user_id = auth.uid());

-- weather_cache holds no user data: no policy, so anon/authenticated see nothing at all.

grant usage on schema public to sync_pipeline, service_role;
grant select, insert, update, delete on public.strava_connections, public.runs,
      public.sync_sessions, public.activity_quarantine, public.weather_cache
      to sync_pipeline, service_role;
grant usage on all sequences in schema public to sync_pipeline, service_role;
