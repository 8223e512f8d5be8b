-- Of the activity ids a listing returned for a user, those neither in runs nor tombstoned
-- (deleted on Strava since): the safety net's shortfall, which must be empty.
select l.id
from unnest(%(ids)s::bigint[]) as l (id)
where not exists (
    select 1 from public.runs r where r.user_id = %(user_id)s and r.strava_id = l.id
  )
  and not exists (
    select 1 from public.strava_deleted_activities d
    where d.user_id = %(user_id)s and d.strava_id = l.id
  )
order by l.id
