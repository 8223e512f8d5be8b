-- Pages fetched by a sync that has not finished yet: a re-launched sync resumes from them
-- instead of fetching them again. Rows live only until their sync's fetch completes.
create table if not exists public.sync_staging (
  user_id       uuid not null references auth.users (id) on delete cascade,
  span          text not null,          -- '<window start>/<window end>' of the listing
  page          integer not null,
  cursor_after  bigint not null,        -- the listing cursor after this page
  records       jsonb not null,         -- the page's activities, verbatim
  created_at    timestamptz not null default now(),
  primary key (user_id, span, page)
);

-- Pipeline-only: RLS on, no policy, no grant to anon/authenticated.
alter table public.sync_staging enable row level security;
alter table public.sync_staging force row level security;
revoke all on public.sync_staging from anon, authenticated;
grant select, insert, update, delete on public.sync_staging to sync_pipeline, service_role;
