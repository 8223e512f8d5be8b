-- Take one request from the app's budget, or nothing (no row back) if it does not fit. The
-- update's row lock serializes concurrent takers. Windows roll on the server clock the caller
-- passes; a caller whose clock is behind never moves a window back.
update public.strava_rate_budget set
  usage_15 = (case when window_15 >= %(w15)s then usage_15 else 0 end) + 1,
  usage_day = (case when window_day >= %(wday)s then usage_day else 0 end) + 1,
  read_usage_15 = (case when window_15 >= %(w15)s then read_usage_15 else 0 end) + %(read)s,
  read_usage_day = (case when window_day >= %(wday)s then read_usage_day else 0 end) + %(read)s,
  window_15 = (case when window_15 >= %(w15)s then window_15 else %(w15)s end),
  window_day = (case when window_day >= %(wday)s then window_day else %(wday)s end)
where app = %(app)s
  and exhausted_until <= %(now)s
  and (case when window_15 >= %(w15)s then usage_15 else 0 end) < limit_15
  and (case when window_day >= %(wday)s then usage_day else 0 end) < limit_day
  and (%(read)s = 0 or (
    (case when window_15 >= %(w15)s then read_usage_15 else 0 end) < read_limit_15
    and (case when window_day >= %(wday)s then read_usage_day else 0 end) < read_limit_day))
returning usage_15
