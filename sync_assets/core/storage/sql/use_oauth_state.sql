-- Spend an OAuth state's nonce (GET /strava/callback): a row back if it was unused, none if
-- it was used before (a replay). The primary key decides, across processes.
insert into {schema}strava_oauth_states (nonce, expires_at)
values (:nonce, {from_epoch(:expires_at)})
on conflict (nonce) do nothing
returning nonce
