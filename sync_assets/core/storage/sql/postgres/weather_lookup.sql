-- Cached weather for a batch of (cell, hour) keys: one round trip whatever the batch size.
select w.cell_lat::float8 as cell_lat, w.cell_lng::float8 as cell_lng, w.hour_utc,
       w.temperature_celsius, w.feels_like_celsius, w.humidity_percent, w.pressure_hpa,
       w.wind_speed_mps, w.wind_direction_degrees, w.weather_code, w.weather_condition,
       w.visibility_meters, w.uv_index
from unnest(%(lats)s::float8[], %(lngs)s::float8[], %(hours)s::timestamptz[])
       as k(lat, lng, hour_utc)
join public.weather_cache w
  on w.provider = %(provider)s
 and w.cell_lat = round(k.lat::numeric, 2)
 and w.cell_lng = round(k.lng::numeric, 2)
 and w.hour_utc = k.hour_utc
