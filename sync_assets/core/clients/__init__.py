"""Clients of the outside world: Strava (`strava`, its listing cursor, tokens, the app-wide
rate budget) and the weather providers (`weather`), over a shared HTTP layer (`http`)."""
