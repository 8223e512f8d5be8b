"""Enrichment of activities: place names (offline) and historical weather (batched, cached)."""
