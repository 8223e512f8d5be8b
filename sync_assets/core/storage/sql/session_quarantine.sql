-- The activities a session quarantined (the seed's failedActivities), oldest first.
select strava_id, reason, source
from {schema}activity_quarantine
where session_id = :session_id{::uuid}
order by id
limit :limit
