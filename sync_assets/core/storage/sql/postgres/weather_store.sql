-- Add fetched hours to the shared cache; an hour already there (fetched concurrently by
-- another run) is kept as it is.
insert into public.weather_cache (
  provider, cell_lat, cell_lng, hour_utc, temperature_celsius, feels_like_celsius,
  humidity_percent, pressure_hpa, wind_speed_mps, wind_direction_degrees, weather_code,
  weather_condition, visibility_meters, uv_index
)
select %(provider)s, round(lat::numeric, 2), round(lng::numeric, 2), hour_utc, temperature,
       feels_like, humidity, pressure, wind_speed, wind_direction, code, cond, visibility, uv
from unnest(
  %(lats)s::float8[], %(lngs)s::float8[], %(hours)s::timestamptz[], %(temperature)s::float8[],
  %(feels_like)s::float8[], %(humidity)s::float8[], %(pressure)s::float8[],
  %(wind_speed)s::float8[], %(wind_direction)s::float8[], %(code)s::int[], %(cond)s::text[],
  %(visibility)s::float8[], %(uv)s::float8[]
) as k(lat, lng, hour_utc, temperature, feels_like, humidity, pressure, wind_speed,
       wind_direction, code, cond, visibility, uv)
on conflict (provider, cell_lat, cell_lng, hour_utc) do nothing
