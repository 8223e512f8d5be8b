"""`sync_health`: the pipeline as an operator watches it, with the alerts as its asset checks.

`sync_health` is not computed: it stands for the whole sync pipeline in the asset graph, so
the alerts have a place in the UI. Each alert is an asset check (a failed check is a fired
alert, its description the figure); `sync_health_sensor` evaluates them every few minutes, and
"Execute checks" on the asset page evaluates them at once.
"""

from collections.abc import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetSpec,
    MetadataValue,
    asset_check,
)

from sync_assets.core import alerts
from sync_assets.resources.strava import StravaResource
from sync_assets.resources.supabase import SupabaseResource
from sync_assets.resources.weather import WeatherResource

SYNC_HEALTH = AssetKey("sync_health")

sync_health = AssetSpec(
    SYNC_HEALTH,
    group_name="monitoring",
    description="The health of the sync pipeline; its checks are the operator's alerts "
    "(failure rate, slow syncs, API quotas, database connections).",
)


Evaluate = Callable[[SupabaseResource, StravaResource, WeatherResource], alerts.Alert]

STRAVA_CLIENT_ID_UNSET = "STRAVA_CLIENT_ID is not set"


def strava_usage(strava: StravaResource) -> dict[str, int] | None:
    """Strava's app-wide usage as the app's budget last saw it, or None without a client id.

    The budget is the application's (its key: API URL + client id): the quota alert needs
    nothing else, no secret, so a missing `STRAVA_CLIENT_SECRET` costs it nothing and a missing
    `STRAVA_CLIENT_ID` only the Strava half (the weather half is still evaluated)."""
    return strava.budget().usage() if strava.client_id else None


def check_result(alert: alerts.Alert) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=alert.name,
        passed=not alert.fired,
        severity=AssetCheckSeverity.ERROR,
        description=alert.figure,
        metadata={"figure": MetadataValue.text(alert.figure), **alert.metadata},
    )


def _check(name: str, description: str, evaluate: Evaluate) -> Callable[..., AssetCheckResult]:
    @asset_check(asset=SYNC_HEALTH, name=name, description=description, blocking=False)
    def _run(
        context: AssetCheckExecutionContext,
        supabase: SupabaseResource,
        strava: StravaResource,
        weather: WeatherResource,
    ) -> AssetCheckResult:
        alert = evaluate(supabase, strava, weather)
        if alert.fired:
            context.log.warning(f"alert {alert.name}: {alert.figure}")
        return check_result(alert)

    return _run


ALERTS: dict[str, tuple[str, Evaluate]] = {
    alerts.FAILURE_RATE: (
        "Fails when more than 5% of the last 100 finished syncs failed.",
        lambda supabase, strava, weather: alerts.failure_rate(supabase.store()),
    ),
    alerts.SLOW_SYNCS: (
        "Fails when a sync took (or is taking) over 2x the median duration of the syncs of its "
        "size.",
        lambda supabase, strava, weather: alerts.slow_syncs(supabase.store()),
    ),
    alerts.API_QUOTA: (
        "Fails when Strava's app-wide usage or the weather calls charged pass 80% of a limit.",
        lambda supabase, strava, weather: alerts.api_quota(
            strava_usage(strava),
            supabase.store(),
            weather.limits(),
            strava_skipped=None if strava.client_id else STRAVA_CLIENT_ID_UNSET,
        ),
    ),
    alerts.DB_POOL: (
        "Fails when a step timed out or waited long for a pooled connection, or the server's "
        "connections in use pass 80%.",
        lambda supabase, strava, weather: alerts.db_pool(
            supabase.store(), supabase.store().connection_usage()
        ),
    ),
}


def evaluate_all(
    supabase: SupabaseResource, strava: StravaResource, weather: WeatherResource
) -> list[alerts.Alert]:
    """Every alert, in the order of `ALERTS`."""
    return [evaluate(supabase, strava, weather) for _, evaluate in ALERTS.values()]


health_checks = [_check(name, description, fn) for name, (description, fn) in ALERTS.items()]
