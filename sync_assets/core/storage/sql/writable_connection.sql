-- A user's connection status, read inside a transaction that writes their data: once the
-- athlete deauthorized the app nothing of theirs is written again (Strava's API agreement).
-- PostgreSQL: `for share` holds the row until commit against delete_user_data, which locks
-- it `for update` before deleting: a write either commits first (and the deletion then sees
-- and deletes it) or waits for the deletion, sees `deauthorized` and refuses.
-- SQLite: every write runs under BEGIN IMMEDIATE, one at a time, the deletion's too.
select status
from {schema}strava_connections
where user_id = :user_id
{for_share}
