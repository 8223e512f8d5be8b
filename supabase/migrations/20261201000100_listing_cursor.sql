-- Staged pages keep the whole listing cursor: both bounds, the order Strava listed in (it
-- documents none: read from the pages) and the offset within the bounds. A resumed listing
-- moves the same bound the interrupted one moved.
-- Pages staged by earlier versions carry an oldest-first cursor that may be wrong for a
-- newest-first answer: they are dropped, so an interrupted sync fetches its pages again.
delete from public.sync_staging;

alter table public.sync_staging
  add column if not exists cursor_before bigint,
  add column if not exists cursor_order  text
    check (cursor_order in ('ascending', 'descending')),
  add column if not exists cursor_page   integer not null default 1;
