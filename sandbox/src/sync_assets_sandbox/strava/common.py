"""Strava's shapes as the sandbox plays them: constants, records, errors and answers.

Shared by the parts of `StravaSandbox` (and by the weather sandbox: `Response`, `_dumps`,
`_gateway_page`...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from sync_assets_sandbox.athletes import (
    SyntheticAthlete,
)

QUARTER_HOUR = 15 * 60
DAY = 86_400
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 200
JSON_TYPE = "application/json; charset=utf-8"
FIRST_ATHLETE_ID = 10_000_001
ACTIVITY_SCOPES = frozenset({"activity:read", "activity:read_all"})
SECRET_PARAMS = frozenset({"client_secret", "refresh_token", "code", "access_token"})
MAX_LOGGED_REQUESTS = 100_000
_INTEGER = re.compile(r"-?[0-9]+\Z")

# How `GET /athlete/activities` orders its answer (Strava documents none). The first three are
# behaviours the real service could have; the last two are faults no client may guess at.
LIST_ORDERS: dict[str, str] = {
    "oldest-first-with-after": "oldest first whenever `after` is given, else newest first",
    "newest-first-always": "newest first, whatever the bounds",
    "newest-first-when-bounded": "newest first with both `after` and `before` (and with "
    "neither); oldest first with `after` alone",
    "unordered": "fault: every page in a shuffled order",
    "flipping": "fault: pages alternate between oldest first and newest first",
}
DEFAULT_LIST_ORDER = "oldest-first-with-after"


@dataclass
class AthleteHandle:
    """Sandbox credentials of one athlete (fine to print: they only open the sandbox)."""

    athlete_id: int
    refresh_token: str
    authorization_code: str
    access_token: str
    expires_at: int
    scopes: str


@dataclass
class Response:
    """What the HTTP layer must send; `action` "drop" or "truncate" injects a network fault."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: str = "send"  # "send" | "drop" | "truncate"
    delay: float = 0.0  # seconds to wait before answering (latency fault)
    held: Callable[[], bool] | None = None  # wait while this says so (hold fault)


@dataclass
class _Grant:
    athlete_id: int
    expires_at: int
    scopes: frozenset[str]


@dataclass
class _Athlete:
    model: SyntheticAthlete
    profile: dict[str, Any]
    scopes: str
    activities: dict[int, dict[str, Any]]
    index: list[tuple[int, int]]  # sorted (start epoch, id): the listing order
    version: int = 0  # bumped on every change: a cache key
    api_requests: int = 0  # authenticated API requests
    list_pages: int = 0  # activity-list pages answered with 200
    served: list[int] = field(default_factory=list)  # ids sent in list pages, most recent last
    revoked: bool = False

    @property
    def id(self) -> int:
        return self.model.athlete_id


class SandboxError(ValueError):
    """A call the sandbox cannot honour (bad argument); HTTP control answers 400."""


class UnknownRecord(SandboxError, LookupError):
    """No such athlete or activity; HTTP control answers 404."""


def _epoch(iso: str) -> int:
    dt = datetime.fromisoformat(iso)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _clone(value: Any) -> Any:
    """A deep copy of JSON-like data, much faster than `copy.deepcopy`."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # lone surrogates: sent as \u escapes, as JSON allows
        return json.dumps(value, separators=(",", ":")).encode()


def _json(status: int, value: Any) -> Response:
    return Response(status, _dumps(value), [("Content-Type", JSON_TYPE)])


def _error(status: int, message: str, resource: str, fld: str, code: str) -> Response:
    return _json(
        status, {"message": message, "errors": [{"resource": resource, "field": fld, "code": code}]}
    )


def _unauthorized() -> Response:
    return _error(401, "Authorization Error", "Athlete", "access_token", "invalid")


def _not_found() -> Response:
    return _error(404, "Record Not Found", "resource", "path", "invalid")


_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
}


def _gateway_page(status: int) -> Response:
    """What a load balancer in front of an API sends: HTML, not the API's JSON."""
    title = f"{status} {_REASONS.get(status, 'Error')}"
    body = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
    return Response(status, body, [("Content-Type", "text/html")])


def checked_list_order(order: str) -> str:
    if order not in LIST_ORDERS:
        raise SandboxError(f"list_order must be one of {sorted(LIST_ORDERS)}, not {order!r}")
    return order


def _parse_query(query_string: str) -> dict[str, str]:
    parsed = parse_qs(query_string, keep_blank_values=True, errors="replace")
    return {k: v[-1] for k, v in parsed.items()}


def _redact(params: dict[str, str]) -> dict[str, str]:
    return {k: ("[redacted]" if k in SECRET_PARAMS else v) for k, v in params.items()}
