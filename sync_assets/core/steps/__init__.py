"""The work behind each asset step, one call per asset, with no Dagster in it.

`sync_assets.core.ingest.fetch_partitions` fetches (`raw_strava_activities`),
`steps.enrich.enrich_partitions` enriches (`weather_enriched_activities`) and
`steps.store.store_partitions` stores (`runs_table`). Each keeps the run's `sync_sessions` up
to date and fills an outcome the asset turns into its metadata and its step metrics; the assets
only read their inputs, build the clients from their resources, make the call, translate a
failure into Dagster's terms and return the metadata.
"""
