-- Another user holding this Strava athlete (connecting it again through OAuth is refused:
-- nothing of theirs is overwritten). A deauthorized connection holds nothing any more.
select user_id{::text} as user_id
from {schema}strava_connections
where athlete_id = :athlete_id and user_id{::text} <> :user_id and status <> 'deauthorized'
limit 1
