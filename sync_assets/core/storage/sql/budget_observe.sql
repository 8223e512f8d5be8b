-- What a Strava response said: its limits, and usage that only raises our count (requests of
-- other runs still in flight may not be in it yet); a 429 blocks until the window resets.
update {schema}strava_rate_budget set
  limit_15 = coalesce(:limit_15, limit_15),
  limit_day = coalesce(:limit_day, limit_day),
  read_limit_15 = coalesce(:read_limit_15, read_limit_15),
  read_limit_day = coalesce(:read_limit_day, read_limit_day),
  usage_15 = (case when window_15 >= :w15 then
      (case when usage_15 > coalesce(:usage_15, 0) then usage_15 else coalesce(:usage_15, 0) end)
    else coalesce(:usage_15, 0) end),
  usage_day = (case when window_day >= :wday then
      (case when usage_day > coalesce(:usage_day, 0) then usage_day else coalesce(:usage_day, 0) end)
    else coalesce(:usage_day, 0) end),
  read_usage_15 = (case when window_15 >= :w15 then
      (case when read_usage_15 > coalesce(:read_usage_15, 0) then read_usage_15 else coalesce(:read_usage_15, 0) end)
    else coalesce(:read_usage_15, 0) end),
  read_usage_day = (case when window_day >= :wday then
      (case when read_usage_day > coalesce(:read_usage_day, 0) then read_usage_day else coalesce(:read_usage_day, 0) end)
    else coalesce(:read_usage_day, 0) end),
  window_15 = (case when window_15 >= :w15 then window_15 else :w15 end),
  window_day = (case when window_day >= :wday then window_day else :wday end),
  clock_offset = :clock_offset,
  exhausted_until = (case when exhausted_until > :exhausted_until then exhausted_until
                     else :exhausted_until end)
where app = :app
