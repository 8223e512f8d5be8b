insert into {schema}activity_quarantine (user_id, strava_id, reason, payload, source, session_id)
values (:user_id, :strava_id, :reason, :payload, :source, :session_id)
on conflict do nothing
