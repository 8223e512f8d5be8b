INSERT INTO weather_cache (
    provider, cell_lat, cell_lng, hour_utc, temperature_celsius, feels_like_celsius,
    humidity_percent, pressure_hpa, wind_speed_mps, wind_direction_degrees, weather_code,
    weather_condition, visibility_meters, uv_index
) VALUES (
    :provider, :cell_lat, :cell_lng, :hour_utc, :temperature_celsius, :feels_like_celsius,
    :humidity_percent, :pressure_hpa, :wind_speed_mps, :wind_direction_degrees, :weather_code,
    :weather_condition, :visibility_meters, :uv_index
)
ON CONFLICT (provider, cell_lat, cell_lng, hour_utc) DO NOTHING
