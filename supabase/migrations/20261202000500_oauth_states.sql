-- The OAuth `state` values already spent at GET /strava/callback (sync_assets/apps/oauth.py):
-- a state is signed and short-lived, and its nonce is recorded here when the callback uses
-- it, so a replayed callback fails in every process of the service. No user column: the
-- signed state names the user; this table only knows that a nonce was used. Rows past their
-- expiry are pruned by the callback (an expired state is refused by its signature check).
create table if not exists public.strava_oauth_states (
  nonce      text primary key,
  expires_at timestamptz not null,
  used_at    timestamptz not null default now()
);
create index if not exists strava_oauth_states_expiry_idx
  on public.strava_oauth_states (expires_at);

alter table public.strava_oauth_states enable row level security;
alter table public.strava_oauth_states force row level security;
revoke all on public.strava_oauth_states from anon, authenticated;
grant select, insert, delete on public.strava_oauth_states to sync_pipeline, service_role;
