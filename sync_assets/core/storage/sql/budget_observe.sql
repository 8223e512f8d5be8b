-- What a Strava response said: its limits, and usage that only raises our count (requests of
-- other runs still in flight may not be in it yet); a 429 blocks until the window resets.
-- A stored window later than :w15_latest / :wday_latest (the server's own `Date`, plus a
-- response's time in flight) was opened by a process whose clock ran fast before it had seen
-- a `Date`: the row moves back to the server's window, keeping every request counted in it.
update {schema}strava_rate_budget set
  limit_15 = coalesce(:limit_15, limit_15),
  limit_day = coalesce(:limit_day, limit_day),
  read_limit_15 = coalesce(:read_limit_15, read_limit_15),
  read_limit_day = coalesce(:read_limit_day, read_limit_day),
  usage_15 = (case when window_15 >= :w15 or window_15 > :w15_latest then
      (case when usage_15 > coalesce(:usage_15, 0) then usage_15 else coalesce(:usage_15, 0) end)
    else coalesce(:usage_15, 0) end),
  usage_day = (case when window_day >= :wday or window_day > :wday_latest then
      (case when usage_day > coalesce(:usage_day, 0) then usage_day else coalesce(:usage_day, 0) end)
    else coalesce(:usage_day, 0) end),
  read_usage_15 = (case when window_15 >= :w15 or window_15 > :w15_latest then
      (case when read_usage_15 > coalesce(:read_usage_15, 0) then read_usage_15 else coalesce(:read_usage_15, 0) end)
    else coalesce(:read_usage_15, 0) end),
  read_usage_day = (case when window_day >= :wday or window_day > :wday_latest then
      (case when read_usage_day > coalesce(:read_usage_day, 0) then read_usage_day else coalesce(:read_usage_day, 0) end)
    else coalesce(:read_usage_day, 0) end),
  window_15 = (case when window_15 > :w15_latest then :w15
                    when window_15 >= :w15 then window_15 else :w15 end),
  window_day = (case when window_day > :wday_latest then :wday
                     when window_day >= :wday then window_day else :wday end),
  clock_offset = :clock_offset,
  exhausted_until = (case when exhausted_until > :exhausted_until then exhausted_until
                     else :exhausted_until end)
where app = :app
