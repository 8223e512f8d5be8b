select start_date_utc from public.runs where user_id = %(user_id)s and strava_id = %(strava_id)s
