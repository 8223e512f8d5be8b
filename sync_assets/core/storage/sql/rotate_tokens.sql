select user_id{::text}, access_token_encrypted, refresh_token_encrypted
from {schema}strava_connections
{for_update}
