-- Add fetched days to the shared cache, one row per provider, cell and UTC day. The rows come
-- as one json array (json, not jsonb: its numbers go straight into the float8 arrays), each
-- variable 24 hourly values, or null when no hour has one. A day already cached gains the
-- hours it lacked (a day the archive had only partly published, or another hour of
-- OpenWeatherMap's); the hours it has are kept as they are, and a day that gains nothing is
-- not written.
insert into public.weather_cache as w (
  provider, cell_lat, cell_lng, day_utc, hours_present, temperature_celsius,
  feels_like_celsius, humidity_percent, pressure_hpa, wind_speed_mps, wind_direction_degrees,
  weather_code, weather_condition, visibility_meters, uv_index
)
select %(provider)s, round(r.lat::numeric, 2), round(r.lng::numeric, 2), r.day, r.present,
       r.temperature, r.feels_like, r.humidity, r.pressure, r.wind_speed, r.wind_direction,
       r.code, r.cond, r.visibility, r.uv
from json_to_recordset(%(days)s::json) as r(
  lat float8, lng float8, day date, present int, temperature float8[], feels_like float8[],
  humidity float8[], pressure float8[], wind_speed float8[], wind_direction float8[],
  code int[], cond text[], visibility float8[], uv float8[]
)
on conflict (provider, cell_lat, cell_lng, day_utc) do update set
  hours_present = w.hours_present | excluded.hours_present,
  temperature_celsius = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.temperature_celsius, excluded.temperature_celsius) with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v)),
  feels_like_celsius = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.feels_like_celsius, excluded.feels_like_celsius) with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v)),
  humidity_percent = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.humidity_percent, excluded.humidity_percent) with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v)),
  pressure_hpa = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.pressure_hpa, excluded.pressure_hpa) with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v)),
  wind_speed_mps = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.wind_speed_mps, excluded.wind_speed_mps) with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v)),
  wind_direction_degrees = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.wind_direction_degrees, excluded.wind_direction_degrees)
           with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v)),
  weather_code = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.weather_code, excluded.weather_code) with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v)),
  weather_condition = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.weather_condition, excluded.weather_condition) with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v)),
  visibility_meters = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.visibility_meters, excluded.visibility_meters) with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v)),
  uv_index = (
    select case when count(v) > 0 then array_agg(v order by i) end
    from unnest(w.uv_index, excluded.uv_index) with ordinality u(o, n, i),
         lateral (select case when (w.hours_present >> (i::int - 1)) & 1 = 1 then o else n end)
           as m(v))
where excluded.hours_present & ~w.hours_present <> 0
