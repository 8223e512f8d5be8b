-- The seed's database contract, copied verbatim (the two CREATE TABLE statements only) from
-- shared/design/seed-design.md, section "2. Sync State Manager (`sync-state-manager.js`)",
-- "Clean Slate Database Schema". tests/test_seed_contract.py compares public.runs and
-- public.sync_sessions with them column by column, and this copy with the design document.

CREATE TABLE public.runs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  strava_id bigint NOT NULL,
  
  -- Core activity data
  name text NOT NULL,
  activity_type text NOT NULL DEFAULT 'Run',
  distance_meters real NOT NULL,
  moving_time_seconds integer NOT NULL,
  elapsed_time_seconds integer NOT NULL,
  
  -- Timing data
  start_date_utc timestamptz NOT NULL,
  start_date_local timestamptz NOT NULL,
  timezone text,
  
  -- Location data (optimized for queries)
  start_latitude real,
  start_longitude real,
  end_latitude real,
  end_longitude real,
  city text,
  state text,
  country text,
  
  -- Performance metrics
  average_speed_ms real,
  max_speed_ms real,
  average_heartrate_bpm integer,
  max_heartrate_bpm integer,
  total_elevation_gain_meters real,
  
  -- Weather data (structured for analytics)
  temperature_celsius real,
  feels_like_celsius real,
  humidity_percent integer,
  pressure_hpa real,
  wind_speed_ms real,
  wind_direction_degrees integer,
  weather_condition text,
  visibility_meters integer,
  uv_index real,
  
  -- Metadata
  enrichment_status jsonb NOT NULL DEFAULT '{"weather": false, "geocoding": false}',
  strava_data jsonb, -- Full Strava payload for future use
  sync_session_id uuid,
  
  -- Timestamps
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now(),
  
  -- Constraints
  UNIQUE(user_id, strava_id)
);

CREATE TABLE public.sync_sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES auth.users(id) ON DELETE CASCADE,
  
  -- Sync configuration
  sync_type text NOT NULL DEFAULT 'full',
  time_range_start timestamptz,
  time_range_end timestamptz,
  
  -- State management
  status text NOT NULL DEFAULT 'initiated',
  current_phase text NOT NULL DEFAULT 'fetching',
  
  -- Progress tracking
  total_activities_estimated integer DEFAULT 0,
  activities_fetched integer DEFAULT 0,
  activities_enriched integer DEFAULT 0,
  activities_stored integer DEFAULT 0,
  activities_failed integer DEFAULT 0,
  
  -- Error handling
  error_count integer DEFAULT 0,
  last_error jsonb,
  retry_count integer DEFAULT 0,
  
  -- Performance metrics
  started_at timestamptz DEFAULT now(),
  completed_at timestamptz,
  last_activity_at timestamptz DEFAULT now(),
  
  -- Checkpointing for resume capability
  last_successful_page integer DEFAULT 0,
  checkpoint_data jsonb,
  
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now()
);
