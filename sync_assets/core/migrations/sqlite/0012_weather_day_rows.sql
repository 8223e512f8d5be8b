-- The weather cache keeps one row per provider, cell and UTC day instead of one per hour, as in
-- PostgreSQL (supabase/migrations/20261201001700_weather_day_rows.sql). Each variable is a JSON
-- array of the day's 24 hourly values (index 0 = 00:00 UTC), null in the hours without a
-- value, and NULL when no hour of the day has one; `hours_present` has bit h set when hour h is
-- cached (a partly published day stays distinguishable from null values).
--
-- SQLite cannot change a primary key: the table is rebuilt, its hourly rows converted (only
-- whole UTC hours were ever looked up). The arrays are built in hour order by a window
-- (an aggregate's own order is not defined before SQLite 3.44); SQLite writes their numbers
-- with 15 significant digits, more than the values kept here (the archive's one or two
-- decimals) have.
CREATE TABLE weather_cache_days (
    cell_lat               REAL NOT NULL,
    cell_lng               REAL NOT NULL,
    day_utc                TEXT NOT NULL,
    provider               TEXT NOT NULL,
    hours_present          INTEGER NOT NULL CHECK (hours_present BETWEEN 1 AND 16777215),
    temperature_celsius    TEXT,
    feels_like_celsius     TEXT,
    humidity_percent       TEXT,
    pressure_hpa           TEXT,
    wind_speed_mps         TEXT,
    wind_direction_degrees TEXT,
    weather_code           TEXT,
    weather_condition      TEXT,
    visibility_meters      TEXT,
    uv_index               TEXT,
    fetched_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (provider, cell_lat, cell_lng, day_utc)
);

INSERT INTO weather_cache_days (
    provider, cell_lat, cell_lng, day_utc, hours_present, temperature_celsius,
    feels_like_celsius, humidity_percent, pressure_hpa, wind_speed_mps, wind_direction_degrees,
    weather_code, weather_condition, visibility_meters, uv_index, fetched_at
)
WITH RECURSIVE
hours (hour) AS (SELECT 0 UNION ALL SELECT hour + 1 FROM hours WHERE hour < 23),
hourly AS (
    SELECT provider, cell_lat, cell_lng, date(hour_utc) AS day_utc,
           CAST(strftime('%H', hour_utc) AS INTEGER) AS hour, temperature_celsius,
           feels_like_celsius, humidity_percent, pressure_hpa, wind_speed_mps,
           wind_direction_degrees, weather_code, weather_condition, visibility_meters, uv_index,
           fetched_at
    FROM weather_cache
    WHERE strftime('%M:%f', hour_utc) = '00:00.000'
),
days AS (
    SELECT provider, cell_lat, cell_lng, day_utc, sum(1 << hour) AS hours_present,
           min(fetched_at) AS fetched_at
    FROM hourly
    GROUP BY provider, cell_lat, cell_lng, day_utc
),
grid AS (
    SELECT d.provider, d.cell_lat, d.cell_lng, d.day_utc, d.hours_present, d.fetched_at,
           s.hour, h.temperature_celsius, h.feels_like_celsius, h.humidity_percent,
           h.pressure_hpa, h.wind_speed_mps, h.wind_direction_degrees, h.weather_code,
           h.weather_condition, h.visibility_meters, h.uv_index
    FROM days d
    CROSS JOIN hours s
    LEFT JOIN hourly h
      ON h.provider = d.provider AND h.cell_lat = d.cell_lat AND h.cell_lng = d.cell_lng
     AND h.day_utc = d.day_utc AND h.hour = s.hour
),
arrays AS (
    SELECT provider, cell_lat, cell_lng, day_utc, hours_present, fetched_at, hour,
           json_group_array(temperature_celsius) OVER day AS temperature_celsius,
           count(temperature_celsius) OVER day AS n_temperature,
           json_group_array(feels_like_celsius) OVER day AS feels_like_celsius,
           count(feels_like_celsius) OVER day AS n_feels_like,
           json_group_array(humidity_percent) OVER day AS humidity_percent,
           count(humidity_percent) OVER day AS n_humidity,
           json_group_array(pressure_hpa) OVER day AS pressure_hpa,
           count(pressure_hpa) OVER day AS n_pressure,
           json_group_array(wind_speed_mps) OVER day AS wind_speed_mps,
           count(wind_speed_mps) OVER day AS n_wind_speed,
           json_group_array(wind_direction_degrees) OVER day AS wind_direction_degrees,
           count(wind_direction_degrees) OVER day AS n_wind_direction,
           json_group_array(weather_code) OVER day AS weather_code,
           count(weather_code) OVER day AS n_code,
           json_group_array(weather_condition) OVER day AS weather_condition,
           count(weather_condition) OVER day AS n_condition,
           json_group_array(visibility_meters) OVER day AS visibility_meters,
           count(visibility_meters) OVER day AS n_visibility,
           json_group_array(uv_index) OVER day AS uv_index,
           count(uv_index) OVER day AS n_uv
    FROM grid
    WINDOW day AS (
        PARTITION BY provider, cell_lat, cell_lng, day_utc ORDER BY hour
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    )
)
SELECT provider, cell_lat, cell_lng, day_utc, hours_present,
       CASE WHEN n_temperature > 0 THEN temperature_celsius END,
       CASE WHEN n_feels_like > 0 THEN feels_like_celsius END,
       CASE WHEN n_humidity > 0 THEN humidity_percent END,
       CASE WHEN n_pressure > 0 THEN pressure_hpa END,
       CASE WHEN n_wind_speed > 0 THEN wind_speed_mps END,
       CASE WHEN n_wind_direction > 0 THEN wind_direction_degrees END,
       CASE WHEN n_code > 0 THEN weather_code END,
       CASE WHEN n_condition > 0 THEN weather_condition END,
       CASE WHEN n_visibility > 0 THEN visibility_meters END,
       CASE WHEN n_uv > 0 THEN uv_index END,
       fetched_at
FROM arrays
WHERE hour = 0;

DROP TABLE weather_cache;
ALTER TABLE weather_cache_days RENAME TO weather_cache;
