-- Connections of one Strava athlete are made one at a time (until commit): two users'
-- callbacks for the same athlete cannot both find it free.
select pg_advisory_xact_lock(hashtextextended('sync_assets.strava_athlete:' || %(athlete_id)s::text, 0))
