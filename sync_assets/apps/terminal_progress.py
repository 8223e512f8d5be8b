"""A sync's progress in the terminal, read from the `sync_sessions` rows the front end sees.

While a Dagster run executes in this process, `SessionProgress` polls the run's sessions
(every 0.5 s, in a background thread) and shows them on a stream (stderr by default):

* on a terminal: a live display (`rich`) with the phase, pages and activities fetched, the
  estimated total and the time left once known, the weather requests and the waits for the
  weather budget, the rows stored;
* elsewhere (CI, cron, a pipe): one plain line per phase a session finished, nothing more::

      fetching: 1,200 activities in 7 pages
      enriching: 683 activities with weather, 3 weather requests
      storing: 1,200 rows (1,200 new)
      completed in 12.3 s

* with `quiet=True`: nothing.

Nothing here keeps its own account of the sync: every figure is a column or a `progress` key
of the session (see `sync_assets.core.sessions`). What is shown is a pure function of session
snapshots (`PlainLines.feed`, `plain_lines`, `live_view`), so tests feed snapshots.

    run_id = str(uuid.uuid4())
    with SessionProgress(store, run_id, stream=sys.stderr, quiet=args.quiet):
        result = job.execute_in_process(run_id=run_id, ...)
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from sync_assets.core.storage.base import SessionRecord, Store

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
PHASES = ("fetching", "enriching", "storing")
# The phase of a session that is in one (`current_phase` is 'fetching' until the first).
ACTIVE = {
    "fetching_activities": "fetching",
    "enriching_weather": "enriching",
    "storing_data": "storing",
}
ENDED = ("failed", "cancelled")
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


# -- figures of a session ------------------------------------------------------------------
def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {plural or word + 's'}"


def _seconds(s: SessionRecord, now: datetime) -> float | None:
    if s.started_at is None:
        return None
    return max(((s.completed_at or now) - s.started_at).total_seconds(), 0.0)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _int(progress: dict[str, Any], key: str) -> int | None:
    value = progress.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def phase_of(s: SessionRecord) -> str | None:
    """The session's phase: 'fetching', 'enriching', 'storing', 'completed', or None before
    the first (a failed, retrying or cancelled session keeps the phase it was in)."""
    if s.status in ACTIVE:
        return ACTIVE[s.status]
    if s.status == "initiated":
        return None
    return s.current_phase


def happened(phase: str, s: SessionRecord) -> bool:
    """Whether the run went through `phase` (told by the figures it leaves behind): an enrich
    job never fetches, a run without the weather step never enriches."""
    if phase == "fetching":
        return s.last_successful_page > 0 or s.activities_fetched > 0
    if phase == "enriching":
        return s.activities_enriched > 0 or "weather_requests" in (s.progress or {})
    return s.status == "completed"


def waiting_text(s: SessionRecord, now: datetime) -> str | None:
    """'waiting 38 s for Open-Meteo's per-minute budget' while the weather step waits."""
    wait = (s.progress or {}).get("waiting")
    if not isinstance(wait, dict):
        return None
    seconds = wait.get("seconds")
    with contextlib.suppress(KeyError, TypeError, ValueError):  # counted down from `until`
        seconds = (datetime.fromisoformat(wait["until"]) - now).total_seconds()
    if not isinstance(seconds, int | float):
        return f"waiting for {wait.get('for', 'the weather API')}"
    return f"waiting {max(seconds, 0):.0f} s for {wait.get('for', 'the weather API')}"


def _time_left(s: SessionRecord, now: datetime) -> str | None:
    """'~12.0 s left' from the phase's `estimated_completion`, while it is ahead."""
    p = s.progress or {}
    eta, processed, total = p.get("estimated_completion"), _int(p, "processed"), _int(p, "total")
    if not isinstance(eta, str) or s.status not in ACTIVE or (total and (processed or 0) >= total):
        return None
    try:
        seconds = (datetime.fromisoformat(eta) - now).total_seconds()
    except ValueError:
        return None
    return f"~{_duration(max(seconds, 0))} left"


def _rows(s: SessionRecord) -> str:
    rows = s.activities_stored + s.activities_updated + s.activities_skipped
    parts = [
        f"{n:,} {what}"
        for n, what in (
            (s.activities_stored, "new"),
            (s.activities_updated, "updated"),
            (s.activities_skipped, "unchanged"),
        )
        if n
    ]
    failed = f", {s.activities_failed:,} failed" if s.activities_failed else ""
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{_plural(rows, 'row')}{detail}{failed}"


def phase_summary(phase: str, s: SessionRecord) -> str:
    """What a finished phase did, from the session's figures (which outlive the phase)."""
    p = s.progress or {}
    if phase == "fetching":
        pages = _plural(s.last_successful_page, "page")
        quarantined = f", {s.activities_failed:,} quarantined" if s.activities_failed else ""
        activities = _plural(s.activities_fetched, "activity", "activities")
        return f"fetching: {activities} in {pages}{quarantined}"
    if phase == "enriching":
        text = (
            f"enriching: {s.activities_enriched:,} activities with weather, "
            f"{_plural(_int(p, 'weather_requests') or 0, 'weather request')}"
        )
        waits = _int(p, "weather_waits") or 0
        if waits:
            waited = _int(p, "weather_waited_seconds") or 0
            text += f", waited {waited:,} s" + (f" ({waits} waits)" if waits > 1 else "")
        return text
    if phase == "storing":
        return f"storing: {_rows(s)}"
    raise ValueError(f"not a phase: {phase}")


def end_line(s: SessionRecord, now: datetime) -> str:
    """The line of a session's end: completed, failed or cancelled, and after how long."""
    seconds = _seconds(s, now)
    # In seconds as the CLI's summary says it (one figure), minutes beside it when long.
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    if seconds is not None and seconds >= 120:
        took += f" ({_duration(seconds)})"
    if s.status == "completed":
        return f"completed{took}"
    after = f" after {_duration(seconds)}" if seconds is not None else ""
    line = f"{s.status} while {s.current_phase}{after}"
    err = s.last_error or {}
    if s.status == "failed" and err:
        message = str(err.get("message", "")).strip().splitlines()
        line += f": {err.get('type', 'ERROR')}: {message[0][:200] if message else ''}".rstrip()
    return line


# -- plain mode: one line per phase change ---------------------------------------------------
@dataclass
class _Seen:
    phases: set[str] = field(default_factory=set)  # observed in a snapshot
    summarized: set[str] = field(default_factory=set)
    ends: set[tuple[str, int]] = field(default_factory=set)  # (status, retry_count) printed
    retries: set[int] = field(default_factory=set)


class PlainLines:
    """The plain mode's lines: fed the run's sessions poll after poll, it returns the lines
    of what changed (a line per phase a session finished, its end, a retry). A phase missed
    between two polls is still told: its figures stay in the session."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def feed(
        self, sessions: Sequence[SessionRecord], now: datetime | None = None, *, final: bool = False
    ) -> list[str]:
        """Lines for this snapshot; `final` (the run is over): a session not ended yet says
        where it stopped."""
        now = now or datetime.now(UTC)
        lines: list[str] = []
        for s in sessions:
            prefix = f"{s.user_id[:8]}: " if len(sessions) > 1 else ""
            lines += [prefix + line for line in self._session(s, now, final)]
        return lines

    def _session(self, s: SessionRecord, now: datetime, final: bool) -> list[str]:
        seen = self._seen.setdefault(s.user_id, _Seen())
        phase = phase_of(s)
        out: list[str] = []
        if s.status == "retrying":
            if s.retry_count not in seen.retries:
                seen.retries.add(s.retry_count)
                out.append(f"retrying (retry {s.retry_count}) from {s.current_phase}")
            # The phase that failed and the later ones run again (all of them: a finished run's).
            seen.summarized -= set(PHASES[PHASES.index(phase) :] if phase in PHASES else PHASES)
            return out
        if phase is None:
            return out
        if phase in PHASES and s.status in ACTIVE:
            seen.phases.add(phase)
        before = PHASES if phase == "completed" else PHASES[: PHASES.index(phase)]
        for p in before:
            if p not in seen.summarized and (p in seen.phases or happened(p, s)):
                seen.summarized.add(p)
                out.append(phase_summary(p, s))
        if s.status == "completed" or s.status in ENDED:
            key = (s.status, s.retry_count)
            if key not in seen.ends:
                seen.ends.add(key)
                out.append(end_line(s, now))
        elif final and phase in PHASES and phase not in seen.summarized:
            seen.summarized.add(phase)
            seconds = _seconds(s, now)
            after = f" after {_duration(seconds)}" if seconds is not None else ""
            out.append(f"{phase_summary(phase, s)} (unfinished: still {s.status}{after})")
        return out


def plain_lines(
    snapshots: Iterable[Sequence[SessionRecord]], now: datetime | None = None
) -> list[str]:
    """Every plain line a sequence of polls gives (the last poll being the final one)."""
    feeder = PlainLines()
    polls = list(snapshots)
    lines: list[str] = []
    for i, sessions in enumerate(polls):
        lines += feeder.feed(sessions, now, final=i == len(polls) - 1)
    return lines


# -- interactive mode: a live view -----------------------------------------------------------
def _current_text(phase: str, s: SessionRecord, now: datetime) -> str:
    p = s.progress or {}
    if phase == "fetching":
        text = (
            f"{s.activities_fetched:,} activities so far, {_plural(s.last_successful_page, 'page')}"
        )
        estimate = s.total_activities_estimated
        if estimate > s.activities_fetched:
            text += f" (at least {estimate:,} expected)"
        elif estimate:
            text += f" of {estimate:,}"
    elif phase == "enriching":
        done = _int(p, "weather_requests") or 0
        planned = _int(p, "weather_requests_planned")
        of = f"/{planned:,}" if planned is not None else ""
        text = f"{done:,}{of} weather requests"
        if s.total_activities_estimated:
            text += f" for {s.total_activities_estimated:,} activities"
        waits = _int(p, "weather_waits") or 0
        if waits:
            text += f", {_plural(waits, 'wait')}"
    else:
        rows = s.total_activities_estimated or s.activities_fetched
        text = f"writing {_plural(rows, 'row')}" if rows else "writing rows"
    return text


def _bar(s: SessionRecord) -> RenderableType:
    p = s.progress or {}
    processed, total = _int(p, "processed"), _int(p, "total")
    if processed is None or not total:
        return Text("")
    return ProgressBar(total=total, completed=min(processed, total), width=20)


def _session_view(s: SessionRecord, now: datetime) -> RenderableType:
    phase = phase_of(s)
    seconds = _seconds(s, now)
    who = f"user {s.user_id[:8]}: "  # the demo's syncs follow one another on screen
    if s.status in ("completed", *ENDED):
        style = "green" if s.status == "completed" else "red"
        head = Text(f"{who}{end_line(s, now)}", style=f"bold {style}")
    else:
        state = s.status.replace("_", " ")
        took = f" · {_duration(seconds)}" if seconds is not None else ""
        left = _time_left(s, now)
        line = Text(f"{who}sync {state}{took}{f' · {left}' if left else ''}", style="bold")
        head = Table.grid(padding=(0, 2))
        head.add_row(line, _bar(s))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=1)
    grid.add_column(min_width=9)
    grid.add_column(no_wrap=True, overflow="ellipsis")
    spin = SPINNER[int(now.timestamp() * 2) % len(SPINNER)]
    position = PHASES.index(phase) if phase in PHASES else (len(PHASES) if phase else -1)
    for i, p in enumerate(PHASES):
        if i < position:  # behind the session: done, or not part of this run
            if happened(p, s):
                summary = phase_summary(p, s).split(": ", 1)[1]
                grid.add_row(Text("✓", style="green"), p, Text(summary))
            else:
                skipped = Text("not in this run", style="dim")
                grid.add_row(Text("-", style="dim"), Text(p, style="dim"), skipped)
        elif i == position:
            if s.status in ENDED:
                mark = Text("✗", style="red")
            elif s.status == "retrying":
                mark = Text("↻", style="yellow")
            else:
                mark = Text(spin, style="cyan")
            grid.add_row(mark, Text(p, style="bold"), Text(_current_text(p, s, now)))
            wait = waiting_text(s, now) if s.status in ACTIVE else None
            if wait:
                grid.add_row(Text(""), Text(""), Text(wait, style="yellow"))
        else:
            grid.add_row(Text("·", style="dim"), Text(p, style="dim"), Text(""))
    return Group(head, grid)


def live_view(sessions: Sequence[SessionRecord], now: datetime | None = None) -> RenderableType:
    """The live display of a run's sessions at `now` (a pure function of the snapshot)."""
    now = now or datetime.now(UTC)
    if not sessions:
        return Text("sync starting…", style="dim")
    return Group(*(_session_view(s, now) for s in sessions))


# -- the watcher ---------------------------------------------------------------------------
class SessionProgress:
    """Show the progress of Dagster run `run_id` (its sessions in `store`) while it runs.

    A context manager: a thread polls `store.run_sessions(run_id)` every `interval` seconds
    while the block runs (the run must execute in this process, or elsewhere on the same
    store), and renders on `stream` (stderr by default): a live display when the stream is a
    terminal (`interactive=None` asks `stream.isatty()`), a plain line per phase change
    otherwise, nothing with `quiet`. Display errors never reach the sync.

        run_id = str(uuid.uuid4())
        with SessionProgress(store, run_id, stream=sys.stderr, quiet=False):
            result = job.execute_in_process(run_id=run_id, ...)

    `run_id` is the session's key: the run's id, or its root run's for a re-execution.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        *,
        stream: IO[str] | None = None,
        quiet: bool = False,
        interactive: bool | None = None,
        interval: float = POLL_SECONDS,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.interval = interval
        self.sessions: list[SessionRecord] = []  # the last snapshot
        self.lines: list[str] = []  # the plain lines written
        self._plain = PlainLines()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None

    def __enter__(self) -> SessionProgress:
        if self.quiet:
            return self
        if self.interactive:
            console = Console(file=self.stream, force_terminal=True)
            self._live = Live(live_view([]), console=console, auto_refresh=False, transient=False)
            self._live.start()
        self._thread = threading.Thread(
            target=self._watch, name=f"session-progress-{self.run_id[:8]}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.quiet:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self._poll(final=True)
        finally:
            if self._live is not None:
                self._live.stop()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(self.interval)

    def _poll(self, *, final: bool = False) -> None:
        try:
            sessions = self.store.run_sessions(self.run_id)
        except Exception as exc:  # the display is best effort: the next poll tries again
            log.debug(f"reading the sessions of run {self.run_id} failed: {exc!r}")
            return
        self.sessions = sessions
        now = datetime.now(UTC)
        try:
            if self._live is not None:
                self._live.update(live_view(sessions, now), refresh=True)
            else:
                lines = self._plain.feed(sessions, now, final=final)
                if lines:
                    self.lines += lines
                    self.stream.write("".join(f"{line}\n" for line in lines))
                    self.stream.flush()
        except Exception as exc:  # a closed stream, a broken pipe: never the sync's problem
            log.debug(f"showing the progress of run {self.run_id} failed: {exc!r}")
