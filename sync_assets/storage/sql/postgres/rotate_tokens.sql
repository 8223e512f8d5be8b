select user_id::text, access_token_encrypted, refresh_token_encrypted
from public.strava_connections
for update
