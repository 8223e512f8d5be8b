"""The applications on the core: the `sync-assets` CLI, the webhook receiver, `status`, the
terminal progress and `sync-assets ui`. They may use the Dagster code location (the CLI runs its
jobs); the core never imports them."""
