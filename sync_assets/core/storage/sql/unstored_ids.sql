-- Of the activity ids a listing returned for a user, those neither in runs nor tombstoned
-- (deleted on Strava since): the safety net's shortfall, which must be empty.
select l.id
from ({ids(:ids)}) as l
where not exists (
    select 1 from {schema}runs r where r.user_id = :user_id and r.strava_id = l.id
  )
  and not exists (
    select 1 from {schema}strava_deleted_activities d
    where d.user_id = :user_id and d.strava_id = l.id
  )
order by l.id
