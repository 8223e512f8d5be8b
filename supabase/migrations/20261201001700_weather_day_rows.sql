-- The weather cache keeps one row per provider, cell and UTC day instead of one per hour: a
-- request answers whole days (a whole history wrote 24 rows a day, 106 MB for 5,000
-- activities), and a lookup reads the hour it needs out of its day.
--
-- Each variable is an array of the day's 24 hourly values (element 1 = 00:00 UTC), null in
-- the hours without a value, and the whole array null when no hour of the day has one (the
-- archive has no visibility or UV index). `hours_present` has bit h set when hour h is cached:
-- a day the archive had only partly published stays distinguishable from hours whose values
-- are null, and its missing hours are added to the row once fetched.
--
-- The hourly rows are converted in place: the table keeps its grants, row level security and
-- updated_at trigger. Only whole UTC hours were ever looked up; other rows are dropped.

create temporary table weather_days as
with hourly as (
  select provider, cell_lat, cell_lng, (hour_utc at time zone 'UTC')::date as day_utc,
         extract(hour from hour_utc at time zone 'UTC')::int as hour, temperature_celsius,
         feels_like_celsius, humidity_percent, pressure_hpa, wind_speed_mps,
         wind_direction_degrees, weather_code, weather_condition, visibility_meters, uv_index,
         fetched_at
  from public.weather_cache
  where date_trunc('hour', hour_utc) = hour_utc
),
days as (
  select provider, cell_lat, cell_lng, day_utc, bit_or(1 << hour) as hours_present,
         min(fetched_at) as fetched_at
  from hourly
  group by provider, cell_lat, cell_lng, day_utc
)
select d.provider, d.cell_lat, d.cell_lng, d.day_utc, d.hours_present, d.fetched_at,
       case when count(h.temperature_celsius) > 0
            then array_agg(h.temperature_celsius order by s.hour) end as temperature_celsius,
       case when count(h.feels_like_celsius) > 0
            then array_agg(h.feels_like_celsius order by s.hour) end as feels_like_celsius,
       case when count(h.humidity_percent) > 0
            then array_agg(h.humidity_percent order by s.hour) end as humidity_percent,
       case when count(h.pressure_hpa) > 0
            then array_agg(h.pressure_hpa order by s.hour) end as pressure_hpa,
       case when count(h.wind_speed_mps) > 0
            then array_agg(h.wind_speed_mps order by s.hour) end as wind_speed_mps,
       case when count(h.wind_direction_degrees) > 0
            then array_agg(h.wind_direction_degrees order by s.hour) end
         as wind_direction_degrees,
       case when count(h.weather_code) > 0
            then array_agg(h.weather_code order by s.hour) end as weather_code,
       case when count(h.weather_condition) > 0
            then array_agg(h.weather_condition order by s.hour) end as weather_condition,
       case when count(h.visibility_meters) > 0
            then array_agg(h.visibility_meters order by s.hour) end as visibility_meters,
       case when count(h.uv_index) > 0
            then array_agg(h.uv_index order by s.hour) end as uv_index
from days d
cross join generate_series(0, 23) as s(hour)
left join hourly h
  on h.provider = d.provider and h.cell_lat = d.cell_lat and h.cell_lng = d.cell_lng
 and h.day_utc = d.day_utc and h.hour = s.hour
group by d.provider, d.cell_lat, d.cell_lng, d.day_utc, d.hours_present, d.fetched_at;

truncate public.weather_cache;

alter table public.weather_cache
  drop constraint weather_cache_pkey,
  drop column hour_utc,
  add column day_utc date not null,
  add column hours_present integer not null,
  alter column temperature_celsius type double precision[] using null,
  alter column feels_like_celsius type double precision[] using null,
  alter column humidity_percent type double precision[] using null,
  alter column pressure_hpa type double precision[] using null,
  alter column wind_speed_mps type double precision[] using null,
  alter column wind_direction_degrees type double precision[] using null,
  alter column weather_code type integer[] using null,
  alter column weather_condition type text[] using null,
  alter column visibility_meters type double precision[] using null,
  alter column uv_index type double precision[] using null,
  add primary key (provider, cell_lat, cell_lng, day_utc),
  add constraint weather_cache_day_shape check (
    hours_present between 1 and 16777215
    and (temperature_celsius is null
         or (array_ndims(temperature_celsius) = 1 and cardinality(temperature_celsius) = 24))
    and (feels_like_celsius is null
         or (array_ndims(feels_like_celsius) = 1 and cardinality(feels_like_celsius) = 24))
    and (humidity_percent is null
         or (array_ndims(humidity_percent) = 1 and cardinality(humidity_percent) = 24))
    and (pressure_hpa is null
         or (array_ndims(pressure_hpa) = 1 and cardinality(pressure_hpa) = 24))
    and (wind_speed_mps is null
         or (array_ndims(wind_speed_mps) = 1 and cardinality(wind_speed_mps) = 24))
    and (wind_direction_degrees is null
         or (array_ndims(wind_direction_degrees) = 1
             and cardinality(wind_direction_degrees) = 24))
    and (weather_code is null
         or (array_ndims(weather_code) = 1 and cardinality(weather_code) = 24))
    and (weather_condition is null
         or (array_ndims(weather_condition) = 1 and cardinality(weather_condition) = 24))
    and (visibility_meters is null
         or (array_ndims(visibility_meters) = 1 and cardinality(visibility_meters) = 24))
    and (uv_index is null or (array_ndims(uv_index) = 1 and cardinality(uv_index) = 24))
  );

insert into public.weather_cache (
  provider, cell_lat, cell_lng, day_utc, hours_present, temperature_celsius, feels_like_celsius,
  humidity_percent, pressure_hpa, wind_speed_mps, wind_direction_degrees, weather_code,
  weather_condition, visibility_meters, uv_index, fetched_at
)
select provider, cell_lat, cell_lng, day_utc, hours_present, temperature_celsius,
       feels_like_celsius, humidity_percent, pressure_hpa, wind_speed_mps,
       wind_direction_degrees, weather_code, weather_condition, visibility_meters, uv_index,
       fetched_at
from weather_days;

drop table weather_days;

comment on table public.weather_cache is
  'Historical weather shared by all users: one row per provider, location cell and UTC day; '
  'each variable an array of 24 hourly values (null: no value), hours_present bit h = hour h '
  'is cached.';
