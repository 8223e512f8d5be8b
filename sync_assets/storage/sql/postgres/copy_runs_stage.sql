copy runs_stage (
  user_id, strava_id, athlete_id, name, type, sport_type, start_date, start_date_local,
  timezone, distance_meters, moving_time_seconds, elapsed_time_seconds,
  total_elevation_gain_meters, average_speed_mps, max_speed_mps, average_heartrate_bpm,
  max_heartrate_bpm, start_lat, start_lng, end_lat, end_lng, manual, trainer, commute,
  private, visibility, city, state, country, temperature_celsius, feels_like_celsius,
  humidity_percent, pressure_hpa, wind_speed_mps, wind_direction_degrees,
  weather_condition, visibility_meters, uv_index, strava_data, enrichment_status
) from stdin
