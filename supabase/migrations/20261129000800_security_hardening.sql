-- Closes what tests/test_security.py found with Supabase's default privileges in place.
--
-- 1. Supabase grants every new sequence in `public` to anon and authenticated. Those roles
--    could then call nextval()/setval() on the identity sequences of activity_quarantine and
--    strava_webhook_events, which burns ids and shows how many events arrived. Only the
--    pipeline (sync_pipeline, service_role) needs them.
-- 2. RLS is forced on every table of the app, as 20261129000200_row_level_security.sql does
--    for the user tables. Only roles with BYPASSRLS skip the policies then, the table owner
--    included, so a table owner without BYPASSRLS sees no row of these pipeline-only tables.
revoke all on all sequences in schema public from anon, authenticated;

alter table public.weather_cache         force row level security;
alter table public.strava_rate_budget    force row level security;
alter table public.strava_webhook_events force row level security;
