"""The control API of the Strava sandbox (`/_sandbox/...`): its Python API over HTTP."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sync_assets_sandbox.strava.common import Response, SandboxError, UnknownRecord, _json
from sync_assets_sandbox.strava.limits import RateLimits


def common_control(
    app: Any, method: str, parts: list[str], data: dict[str, Any]
) -> Response | None:
    """The control endpoints both sandboxes share: usage, clock and the request log."""
    if parts == ["usage"] and method == "GET":
        return _json(200, app.usage())
    if parts == ["usage"] and method == "DELETE":
        app.reset_usage()
        return _json(200, app.usage())
    if parts == ["clock"] and method == "GET":
        return _json(200, {"now": app.now()})
    if parts == ["clock"] and method == "POST":
        if "epoch" in data:
            app.set_clock(float(data["epoch"]))
        if "advance" in data:
            app.advance_clock(float(data["advance"]))
        return _json(200, {"now": app.now()})
    if parts == ["requests"] and method == "GET":
        with app._lock:
            return _json(200, list(app.requests))
    if parts == ["requests"] and method == "DELETE":
        app.clear_requests()
        return _json(200, {"cleared": True})
    return None


class ControlMixin:
    """The `/_sandbox/` part of `StravaSandbox` (its state is set up by `SandboxState`)."""

    # -- control API (/_sandbox/...) ------------------------------------------------------
    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> Response:
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return _json(400, {"message": "the body is not JSON"})
        if not isinstance(data, dict):
            return _json(400, {"message": "the body must be a JSON object"})
        parts = path.strip("/").split("/")[1:]
        try:
            return self._control_route(method, parts, data)
        except SandboxError as exc:
            return _json(404 if isinstance(exc, UnknownRecord) else 400, {"message": str(exc)})
        except (KeyError, ValueError, TypeError) as exc:
            return _json(400, {"message": f"{type(exc).__name__}: {exc}"})

    def _control_route(self, method: str, parts: list[str], data: dict[str, Any]) -> Response:
        head = parts[0] if parts else ""
        if head == "athletes":
            return self._control_athletes(method, parts[1:], data)
        if parts == ["faults"] and method == "GET":
            return _json(200, asdict(self.faults))
        if parts == ["faults"] and method in ("PUT", "PATCH", "POST"):
            return _json(200, asdict(self.set_faults(**data)))
        if parts == ["faults"] and method == "DELETE":
            self.clear_faults()
            return _json(200, asdict(self.faults))
        if parts == ["settings"] and method == "GET":
            return _json(200, self.settings())
        if parts == ["settings"] and method in ("PUT", "PATCH", "POST"):
            unknown = sorted(set(data) - {"list_order"})
            if unknown:
                raise SandboxError(f"unknown settings: {unknown}")
            if "list_order" in data:
                self.set_list_order(str(data["list_order"]))
            return _json(200, self.settings())
        if parts == ["limits"] and method == "GET":
            return _json(200, asdict(self.limits))
        if parts == ["limits"] and method in ("PUT", "PATCH", "POST"):
            self.set_limits(RateLimits(**{**asdict(self.limits), **data}))
            return _json(200, asdict(self.limits))
        common = common_control(self, method, parts, data)
        if common is not None:
            return common
        if parts == ["mutations"] and method == "GET":
            with self._lock:
                return _json(200, list(self.mutations))
        return _json(404, {"message": f"no control endpoint {method} /_sandbox/{'/'.join(parts)}"})

    def _control_athletes(self, method: str, rest: list[str], data: dict[str, Any]) -> Response:
        if not rest:
            if method == "GET":
                return _json(200, self.athletes())
            if method == "POST":
                handle = self.add_athlete(
                    int(data.get("n_activities", 100)),
                    seed=None if data.get("seed") is None else int(data["seed"]),
                    scopes=str(data.get("scopes", "read,activity:read_all")),
                    years=None if data.get("years") is None else float(data["years"]),
                    athlete_id=None if data.get("athlete_id") is None else int(data["athlete_id"]),
                )
                return _json(201, asdict(handle))
        elif not rest[0].isdigit():
            raise UnknownRecord(f"no athlete {rest[0]!r}")
        else:
            aid = int(rest[0])
            tail = rest[1:]
            if tail == [] and method == "GET":
                self._athlete(aid)
                return _json(200, next(a for a in self.athletes() if a["athlete_id"] == aid))
            if tail == ["revoke"] and method == "POST":
                self.revoke(aid)
                return _json(200, {"revoked": aid})
            if tail == ["authorize"] and method == "POST":
                code = self.authorize(aid, data.get("scopes"))
                return _json(201, {"athlete_id": aid, "authorization_code": code})
            if tail == ["activities"] and method == "GET":
                return _json(200, self.activities(aid))
            if tail == ["activities"] and method == "POST":
                return _json(201, self._control_add(aid, data))
            if tail == ["malformed"] and method == "GET":
                return _json(200, {str(k): v for k, v in self.malformed_activity_ids(aid).items()})
            if len(tail) == 2 and tail[0] == "activities" and tail[1].isdigit():
                if method == "DELETE":
                    self.delete_activity(aid, int(tail[1]))
                    return _json(200, {"deleted": int(tail[1])})
                if method in ("PUT", "PATCH"):
                    return _json(200, self.update_activity(aid, int(tail[1]), **data))
        return _json(404, {"message": f"no control endpoint {method} /_sandbox/athletes/..."})

    def _control_add(self, athlete_id: int, data: dict[str, Any]) -> dict[str, Any]:
        start = data.get("start_date")
        start_dt = None
        if start is not None:
            start_dt = datetime.fromisoformat(str(start))
        if set(data) <= {"start_date"}:  # nothing but (maybe) a date: generate one
            return self.add_activity(athlete_id, start_date=start_dt)
        return self.add_activity(athlete_id, data)
