-- Strava's push events, stored before the receiver answers 200: the source of truth for the
-- sensor that turns them into syncs, deletions and deauthorizations. A redelivered event
-- (same object, aspect, owner and time) is stored once.
create table if not exists public.strava_webhook_events (
  id              bigint generated always as identity primary key,
  subscription_id bigint,
  object_type     text not null check (object_type in ('activity', 'athlete')),
  object_id       bigint not null,
  aspect_type     text not null check (aspect_type in ('create', 'update', 'delete')),
  owner_id        bigint not null,
  event_time      bigint not null,
  updates         jsonb not null default '{}'::jsonb,
  received_at     timestamptz not null default now()
);
create unique index if not exists strava_webhook_events_dedup_idx
  on public.strava_webhook_events (object_type, object_id, aspect_type, owner_id, event_time);

alter table public.strava_webhook_events enable row level security;
revoke all on public.strava_webhook_events from anon, authenticated;
grant select, insert, update, delete on public.strava_webhook_events to sync_pipeline, service_role;
grant usage on all sequences in schema public to sync_pipeline, service_role;
