-- The cached days of the (cell, UTC day) keys staged in temp.weather_days: each variable a JSON
-- array of 24 hourly values (NULL: no hour has one), `hours_present` the hours the row holds.
SELECT w.cell_lat, w.cell_lng, w.day_utc, w.hours_present, w.temperature_celsius,
       w.feels_like_celsius, w.humidity_percent, w.pressure_hpa, w.wind_speed_mps,
       w.wind_direction_degrees, w.weather_code, w.weather_condition, w.visibility_meters,
       w.uv_index
FROM temp.weather_days k
JOIN weather_cache w
  ON w.provider = :provider AND w.cell_lat = k.cell_lat AND w.cell_lng = k.cell_lng
 AND w.day_utc = k.day_utc
