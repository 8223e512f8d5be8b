-- An activity deleted on Strava: the row goes and a tombstone stays (ids are never reused),
-- so a run that fetched it before the deletion cannot store it again. Returns rows deleted.
with tombstone as (
  insert into public.strava_deleted_activities (user_id, strava_id)
  values (%(user_id)s, %(strava_id)s)
  on conflict do nothing
)
delete from public.runs where user_id = %(user_id)s and strava_id = %(strava_id)s
