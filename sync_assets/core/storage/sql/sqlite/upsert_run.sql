-- One run, inserted or updated (executemany: a batch of them); an identical row is left alone
-- (0 rows changed), and keeps the sync_session_id of the session that last wrote it.
INSERT INTO runs (
  id,
  user_id, strava_id, athlete_id, name, activity_type, type, sport_type, start_date_utc,
  start_date_local, timezone, distance_meters, moving_time_seconds, elapsed_time_seconds,
  total_elevation_gain_meters, average_speed_ms, max_speed_ms, average_heartrate_bpm,
  max_heartrate_bpm, average_heartrate_bpm_precise, max_heartrate_bpm_precise, start_latitude,
  start_longitude, end_latitude, end_longitude, manual, trainer, commute, private, visibility,
  city, state, country, temperature_celsius, feels_like_celsius, humidity_percent,
  pressure_hpa, wind_speed_ms, wind_direction_degrees, weather_condition, visibility_meters,
  uv_index, strava_data, enrichment_status, sync_session_id
) VALUES (
  -- id: a random UUID (version 4), written as Python's str(uuid.uuid4()) writes one
  lower(
    hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
    || '-' || substr('89ab', 1 + abs(random() % 4), 1) || substr(hex(randomblob(2)), 2)
    || '-' || hex(randomblob(6))
  ),
  -- the other columns, in the order above (RUNS_COLUMNS: SqliteStore._encode)
  ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
  ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
)
ON CONFLICT (user_id, strava_id) DO UPDATE SET
  athlete_id = excluded.athlete_id,
  name = excluded.name,
  activity_type = excluded.activity_type,
  type = excluded.type,
  sport_type = excluded.sport_type,
  start_date_utc = excluded.start_date_utc,
  start_date_local = excluded.start_date_local,
  timezone = excluded.timezone,
  distance_meters = excluded.distance_meters,
  moving_time_seconds = excluded.moving_time_seconds,
  elapsed_time_seconds = excluded.elapsed_time_seconds,
  total_elevation_gain_meters = excluded.total_elevation_gain_meters,
  average_speed_ms = excluded.average_speed_ms,
  max_speed_ms = excluded.max_speed_ms,
  average_heartrate_bpm = excluded.average_heartrate_bpm,
  max_heartrate_bpm = excluded.max_heartrate_bpm,
  average_heartrate_bpm_precise = excluded.average_heartrate_bpm_precise,
  max_heartrate_bpm_precise = excluded.max_heartrate_bpm_precise,
  start_latitude = excluded.start_latitude,
  start_longitude = excluded.start_longitude,
  end_latitude = excluded.end_latitude,
  end_longitude = excluded.end_longitude,
  manual = excluded.manual,
  trainer = excluded.trainer,
  commute = excluded.commute,
  private = excluded.private,
  visibility = excluded.visibility,
  city = excluded.city,
  state = excluded.state,
  country = excluded.country,
  temperature_celsius = excluded.temperature_celsius,
  feels_like_celsius = excluded.feels_like_celsius,
  humidity_percent = excluded.humidity_percent,
  pressure_hpa = excluded.pressure_hpa,
  wind_speed_ms = excluded.wind_speed_ms,
  wind_direction_degrees = excluded.wind_direction_degrees,
  weather_condition = excluded.weather_condition,
  visibility_meters = excluded.visibility_meters,
  uv_index = excluded.uv_index,
  strava_data = excluded.strava_data,
  enrichment_status = excluded.enrichment_status,
  sync_session_id = excluded.sync_session_id
WHERE (
  runs.athlete_id, runs.name, runs.activity_type, runs.type, runs.sport_type,
  runs.start_date_utc, runs.start_date_local, runs.timezone, runs.distance_meters,
  runs.moving_time_seconds, runs.elapsed_time_seconds, runs.total_elevation_gain_meters,
  runs.average_speed_ms, runs.max_speed_ms, runs.average_heartrate_bpm,
  runs.max_heartrate_bpm, runs.average_heartrate_bpm_precise, runs.max_heartrate_bpm_precise,
  runs.start_latitude, runs.start_longitude, runs.end_latitude, runs.end_longitude,
  runs.manual, runs.trainer, runs.commute, runs.private, runs.visibility, runs.city,
  runs.state, runs.country, runs.temperature_celsius, runs.feels_like_celsius,
  runs.humidity_percent, runs.pressure_hpa, runs.wind_speed_ms, runs.wind_direction_degrees,
  runs.weather_condition, runs.visibility_meters, runs.uv_index, runs.strava_data,
  runs.enrichment_status
) IS NOT (
  excluded.athlete_id, excluded.name, excluded.activity_type, excluded.type,
  excluded.sport_type, excluded.start_date_utc, excluded.start_date_local, excluded.timezone,
  excluded.distance_meters, excluded.moving_time_seconds, excluded.elapsed_time_seconds,
  excluded.total_elevation_gain_meters, excluded.average_speed_ms, excluded.max_speed_ms,
  excluded.average_heartrate_bpm, excluded.max_heartrate_bpm,
  excluded.average_heartrate_bpm_precise, excluded.max_heartrate_bpm_precise,
  excluded.start_latitude, excluded.start_longitude, excluded.end_latitude,
  excluded.end_longitude, excluded.manual, excluded.trainer, excluded.commute,
  excluded.private, excluded.visibility, excluded.city, excluded.state, excluded.country,
  excluded.temperature_celsius, excluded.feels_like_celsius, excluded.humidity_percent,
  excluded.pressure_hpa, excluded.wind_speed_ms, excluded.wind_direction_degrees,
  excluded.weather_condition, excluded.visibility_meters, excluded.uv_index,
  excluded.strava_data, excluded.enrichment_status
)
