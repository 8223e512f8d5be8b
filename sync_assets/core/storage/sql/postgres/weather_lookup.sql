-- Cached weather for a batch of (cell, UTC hour) keys, each given as its cell, UTC day and hour
-- of the day (0-23): one round trip whatever the batch size. A day's row answers the hours it
-- holds (`hours_present`), each variable read out of its 24-hour array (null arrays: null).
select w.cell_lat::float8 as cell_lat, w.cell_lng::float8 as cell_lng, w.day_utc, k.hour,
       w.temperature_celsius[k.hour + 1] as temperature_celsius,
       w.feels_like_celsius[k.hour + 1] as feels_like_celsius,
       w.humidity_percent[k.hour + 1] as humidity_percent,
       w.pressure_hpa[k.hour + 1] as pressure_hpa,
       w.wind_speed_mps[k.hour + 1] as wind_speed_mps,
       w.wind_direction_degrees[k.hour + 1] as wind_direction_degrees,
       w.weather_code[k.hour + 1] as weather_code,
       w.weather_condition[k.hour + 1] as weather_condition,
       w.visibility_meters[k.hour + 1] as visibility_meters,
       w.uv_index[k.hour + 1] as uv_index
from unnest(%(lats)s::float8[], %(lngs)s::float8[], %(days)s::date[], %(hours)s::int[])
       as k(lat, lng, day_utc, hour)
join public.weather_cache w
  on w.provider = %(provider)s
 and w.cell_lat = round(k.lat::numeric, 2)
 and w.cell_lng = round(k.lng::numeric, 2)
 and w.day_utc = k.day_utc
where (w.hours_present >> k.hour) & 1 = 1
