-- What a Supabase project has before any migration, reduced to what ours rely on, so that the
-- migrations run unchanged on a plain PostgreSQL (`sync-assets db init --plain-postgres`):
-- the `auth` schema with `auth.users` and `auth.uid()`, the API roles and the Realtime
-- publication. Idempotent. Roles are cluster-wide: created if missing. Never run on Supabase,
-- which has its own (and richer) versions of each.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end;
$$;

create schema if not exists auth;
create table if not exists auth.users (
  id          uuid primary key,
  email       text,
  created_at  timestamptz not null default now()
);

-- As in Supabase: the `sub` claim of the request's JWT, set by PostgREST per request.
create or replace function auth.uid() returns uuid
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

grant usage on schema auth to anon, authenticated, service_role;
grant execute on function auth.uid() to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;

do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end;
$$;
