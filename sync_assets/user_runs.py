"""One run per user at a time, on Dagster's side: the user tag and the steps' hold.

Every run of one user carries the tag `sync_assets/user` (the sensors' and schedules' run
requests, `sync-assets sync`, and, through the instance class, the runs of a backfill
launched from the UI: `with_user_tag`). The instance's run queue then starts one of them at a
time (`concurrency.runs.tag_concurrency_limits`, `applyLimitPerUniqueValue`, in
`dagster.yaml`): the others stay queued. A run over several users carries no such tag (a tag
has one value).

Runs outside the queue (`sync-assets sync` executes in its own process; a multi-user run; an
instance without the queue) are kept apart by the database: each step holds its users
(`core.leases.UserHold`) and waits while another run holds one. A holder whose Dagster run
has ended (and no re-execution of it is under way) is passed over at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from sync_assets.core.leases import UserHold
from sync_assets.core.sessions import ROOT_RUN_TAG, session_key
from sync_assets.core.storage.base import Store
from sync_assets.core.windows import split_key
from sync_assets.dagster_private import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

USER_TAG = "sync_assets/user"
ACTIVE = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def _user_of(key: str | None) -> str | None:
    if not key or "|" not in key:
        return None
    try:
        return split_key(key)[0]
    except ValueError:
        return None


def tagged_user(tags: Mapping[str, str]) -> str | None:
    """The one user a run's partition tags cover (range or single partition), else None."""
    start = _user_of(tags.get(ASSET_PARTITION_RANGE_START_TAG))
    end = _user_of(tags.get(ASSET_PARTITION_RANGE_END_TAG))
    if start is not None or end is not None:
        return start if start == end else None
    return _user_of(tags.get(PARTITION_NAME_TAG))


def with_user_tag(tags: Mapping[str, str] | None) -> dict[str, str]:
    """`tags` with the run's user tag added, when its partitions belong to one user."""
    tags = dict(tags or {})
    if USER_TAG not in tags and (user := tagged_user(tags)) is not None:
        tags[USER_TAG] = user
    return tags


def run_ended(instance: DagsterInstance) -> Callable[[str], bool]:
    """Whether the holder `run_id` (a root run id) has ended: its run is finished and no
    re-execution of it is starting or working. A run this instance does not know (one that
    `sync-assets sync` is about to start, another instance's) has not."""

    def ended(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        if run is None or not run.is_finished:
            return False
        again = instance.get_runs(
            filters=RunsFilter(tags={ROOT_RUN_TAG: run_id}, statuses=ACTIVE), limit=1
        )
        return not again

    return ended


def step_hold(
    context: Any,  # noqa: ANN401 - an AssetExecutionContext
    store: Store,
    users: Iterable[str],
    *,
    release: bool = False,
) -> UserHold:
    """The hold a step of `context`'s run keeps on `users` while it works (the run's root id:
    a re-execution continues the hold); `release`: the run's last step frees them."""

    def waiting(user: str, holder: Any) -> None:  # noqa: ANN401 - LeaseHolder
        context.log.info(
            f"user {user} is being synced by run {holder.run_id}: this run waits for it to end"
        )

    run = context.run
    return UserHold(
        store,
        users,
        session_key(run.tags, run.run_id),
        release=release,
        holder_ended=run_ended(context.instance),
        on_wait=waiting,
    )


def active_runs_of(instance: DagsterInstance, user: str, besides: str) -> list[Any]:
    """The user's runs starting or working in `instance`, other than `besides`."""
    runs = instance.get_runs(filters=RunsFilter(tags={USER_TAG: user}, statuses=ACTIVE))
    return [r for r in runs if r.run_id != besides]
