-- Take one request from the app's budget, or nothing (no row back) if it does not fit. The
-- update's row lock serializes concurrent takers. Windows roll on the server clock the caller
-- passes; a caller whose clock is behind never moves a window back.
update {schema}strava_rate_budget set
  usage_15 = (case when window_15 >= :w15 then usage_15 else 0 end) + 1,
  usage_day = (case when window_day >= :wday then usage_day else 0 end) + 1,
  read_usage_15 = (case when window_15 >= :w15 then read_usage_15 else 0 end) + :read,
  read_usage_day = (case when window_day >= :wday then read_usage_day else 0 end) + :read,
  window_15 = (case when window_15 >= :w15 then window_15 else :w15 end),
  window_day = (case when window_day >= :wday then window_day else :wday end)
where app = :app
  and exhausted_until <= :now
  and (case when window_15 >= :w15 then usage_15 else 0 end) < limit_15
  and (case when window_day >= :wday then usage_day else 0 end) < limit_day
  and (:read = 0 or (
    (case when window_15 >= :w15 then read_usage_15 else 0 end) < read_limit_15
    and (case when window_day >= :wday then read_usage_day else 0 end) < read_limit_day))
returning usage_15
