insert into public.activity_quarantine (user_id, strava_id, reason, payload, source, session_id)
values (%(user_id)s, %(strava_id)s, %(reason)s, %(payload)s, %(source)s, %(session_id)s)
on conflict do nothing
