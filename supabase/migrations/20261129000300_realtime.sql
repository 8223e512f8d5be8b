-- A front end subscribed with Supabase Realtime sees sync progress as it is written.
do $$
begin
  if not exists (
    select 1 from pg_publication_tables
    where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'sync_sessions'
  ) then
    alter publication supabase_realtime add table public.sync_sessions;
  end if;
end;
$$;
