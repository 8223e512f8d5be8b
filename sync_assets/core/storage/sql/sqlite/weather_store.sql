-- One day of the cache, written whole: the store has merged it with the cached day (in the
-- same IMMEDIATE transaction) when there was one.
INSERT INTO weather_cache (
    provider, cell_lat, cell_lng, day_utc, hours_present, temperature_celsius,
    feels_like_celsius, humidity_percent, pressure_hpa, wind_speed_mps, wind_direction_degrees,
    weather_code, weather_condition, visibility_meters, uv_index
) VALUES (
    :provider, :cell_lat, :cell_lng, :day_utc, :hours_present, :temperature_celsius,
    :feels_like_celsius, :humidity_percent, :pressure_hpa, :wind_speed_mps,
    :wind_direction_degrees, :weather_code, :weather_condition, :visibility_meters, :uv_index
)
ON CONFLICT (provider, cell_lat, cell_lng, day_utc) DO UPDATE SET
    hours_present = excluded.hours_present,
    temperature_celsius = excluded.temperature_celsius,
    feels_like_celsius = excluded.feels_like_celsius,
    humidity_percent = excluded.humidity_percent,
    pressure_hpa = excluded.pressure_hpa,
    wind_speed_mps = excluded.wind_speed_mps,
    wind_direction_degrees = excluded.wind_direction_degrees,
    weather_code = excluded.weather_code,
    weather_condition = excluded.weather_condition,
    visibility_meters = excluded.visibility_meters,
    uv_index = excluded.uv_index,
    updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
