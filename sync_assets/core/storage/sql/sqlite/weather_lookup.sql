-- Cached weather for the keys staged in temp.weather_keys.
SELECT w.cell_lat, w.cell_lng, w.hour_utc, w.temperature_celsius, w.feels_like_celsius,
       w.humidity_percent, w.pressure_hpa, w.wind_speed_mps, w.wind_direction_degrees,
       w.weather_code, w.weather_condition, w.visibility_meters, w.uv_index
FROM temp.weather_keys k
JOIN weather_cache w
  ON w.provider = :provider AND w.cell_lat = k.cell_lat AND w.cell_lng = k.cell_lng
 AND w.hour_utc = k.hour_utc
