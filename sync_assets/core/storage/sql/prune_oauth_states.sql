-- Nonces of states past their expiry: their signature check refuses them already.
delete from {schema}strava_oauth_states where expires_at < {from_epoch(:now)}
