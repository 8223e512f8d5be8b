"""Sensors and schedules of the code location (new users, incremental syncs, run status)."""
