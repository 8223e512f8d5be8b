"""The core: what a sync does, with no Dagster import.

Clients of the outside world (`clients`: Strava with OAuth, pagination and the app-wide
budget; the weather providers), the activity model and its validation (`models`), the fetch
(`ingest`) and the two later steps (`steps`), enrichment (`enrichment`), the sessions' state
machine (`sessions`), metrics and alerts, errors, the stores (`storage`, one implementation for
PostgreSQL and SQLite) and their migrations. The Dagster code location (`sync_assets.assets`,
`resources`, `sensors`, `definitions`) and the applications (`sync_assets.apps`) build on it;
nothing here imports them (`tests/test_layers.py`, import-linter's contracts in pyproject.toml).
"""
