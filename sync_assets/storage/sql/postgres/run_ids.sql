select strava_id from public.runs where user_id = %(user_id)s order by start_date_utc, strava_id
