-- A batch of the runs table as CSV written by Arrow (PostgresStore._encode): RUNS_COLUMNS in
-- order, no header; an empty unquoted field is null, text is always quoted; UTF-8 whatever
-- the connection's client_encoding (Arrow's text is UTF-8).
copy runs_stage (
  user_id, strava_id, athlete_id, name, activity_type, type, sport_type, start_date_utc,
  start_date_local, timezone, distance_meters, moving_time_seconds, elapsed_time_seconds,
  total_elevation_gain_meters, average_speed_ms, max_speed_ms, average_heartrate_bpm,
  max_heartrate_bpm, average_heartrate_bpm_precise, max_heartrate_bpm_precise, start_latitude,
  start_longitude, end_latitude, end_longitude, manual, trainer, commute, private, visibility,
  city, state, country, temperature_celsius, feels_like_celsius, humidity_percent,
  pressure_hpa, wind_speed_ms, wind_direction_degrees, weather_condition, visibility_meters,
  uv_index, strava_data, enrichment_status, sync_session_id
) from stdin (format csv, encoding 'utf8')
