-- Sync progress as it is written, for front ends and tools that LISTEN (PostgreSQL's own
-- notifications) rather than subscribe through Supabase Realtime: every insert or update of a
-- session is announced on the channel `sync_sessions`. The payload is what a progress bar
-- needs (ids, state, phase progress, counters): no error text, never a token. The pipeline
-- writes progress at most once a second per phase, so a listener sees it move, not every row.
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
      'progress', new.progress,
      'activities_fetched', new.activities_fetched,
      'activities_enriched', new.activities_enriched,
      'activities_stored', new.activities_stored,
      'activities_failed', new.activities_failed,
      'updated_at', new.updated_at
    )::text
  );
  return null;
end;
$$;
revoke all on function public.notify_sync_session() from public, anon, authenticated;

drop trigger if exists sync_sessions_notify on public.sync_sessions;
create trigger sync_sessions_notify
  after insert or update on public.sync_sessions
  for each row execute function public.notify_sync_session();
