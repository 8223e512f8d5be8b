-- Active connections made after a keyset point (the new-user sensor's cursor), oldest first;
-- no token columns: the sensor needs to know who, not to act for them.
select user_id{::text} as user_id, created_at
from {schema}strava_connections
where status = 'active' and (created_at, user_id{::text}) > (:since, :after_user)
order by created_at, user_id{::text}
limit :limit
