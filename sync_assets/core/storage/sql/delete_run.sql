-- An activity deleted on Strava: the row goes and a tombstone stays (ids are never reused),
-- so a run that fetched it before the deletion cannot store it again. Returns rows deleted.
insert into {schema}strava_deleted_activities (user_id, strava_id)
values (:user_id, :strava_id)
on conflict do nothing;
delete from {schema}runs where user_id = :user_id and strava_id = :strava_id
