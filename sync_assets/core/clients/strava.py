"""A Strava API v3 client for one user: OAuth refresh, app-wide budget, retries, pagination.

It talks plain HTTP to the base URLs it is given, so the same code runs against
www.strava.com and against the bundled sandbox. What it guarantees:

* The access token is refreshed before it expires (and once more if Strava answers 401); a
  rotated refresh token is committed to the token store before the new access token is used.
* No request is sent that the app-wide budget cannot take (see `rate_limit`).
* Network errors, 5xx and unparsable bodies are retried with exponential backoff and jitter
  (tenacity); every other failure is raised as a classified `SyncError`.
* Listing uses keyset pagination on `start_date` with `per_page=200`, in whichever order
  Strava answers (read from each page, never assumed), and stops at the first short page, so
  activities added or deleted while paging can neither shift a page nor be fetched twice.
* Nothing secret reaches a log line, an exception or a metric.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from sync_assets.core.clients.http import LatencyStats, TimedTransport, response_json
from sync_assets.core.clients.rate_limit import RateLimitBudget
from sync_assets.core.clients.strava_listing import ListCursor, advance, read_order, start_epoch
from sync_assets.core.clients.tokens import StravaTokens, TokenStore
from sync_assets.core.errors import (
    AuthenticationError,
    ErrorType,
    RateLimitError,
    SyncError,
    is_transient,
)

DEFAULT_API_URL = "https://www.strava.com/api/v3"
DEFAULT_OAUTH_URL = "https://www.strava.com/oauth/token"
PAGE_SIZE = 200  # Strava's maximum per_page
MAX_429_PER_REQUEST = 3  # a budget that keeps being refused is not ours to wait for
USER_AGENT = "sync_assets/0.1 (+https://github.com/sync-assets)"

log = logging.getLogger(__name__)


@dataclass
class RequestStats:
    """What a client spent: reported in materialization metadata and benchmarks."""

    list_calls: int = 0
    athlete_calls: int = 0
    activity_calls: int = 0
    token_calls: int = 0
    http_requests: int = 0  # every attempt on the wire, retries included
    retries: int = 0
    auth_retries: int = 0
    rate_limit_waits: int = 0
    http_429: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    latency: LatencyStats = field(default_factory=LatencyStats)

    @property
    def api_calls(self) -> int:
        return self.list_calls + self.athlete_calls + self.activity_calls


@dataclass(frozen=True)
class ActivityPage:
    number: int
    records: list[Any]  # raw JSON values, new to this listing (overlap removed)
    received: int  # records in the response, overlap included
    cursor: ListCursor  # where the listing continues past this page


def _strava_message(resp: httpx.Response) -> str:
    """Strava's error JSON, condensed: `message` plus resource/field/code of each error."""
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code} with a non-JSON body"
    if not isinstance(body, dict):
        return f"HTTP {resp.status_code}"
    parts = [str(body.get("message", f"HTTP {resp.status_code}"))]
    for err in body.get("errors") or []:
        if isinstance(err, dict):
            parts.append(f"{err.get('resource')}.{err.get('field')}={err.get('code')}")
    return " ".join(parts)[:300]


def _error_field(resp: httpx.Response) -> tuple[str | None, str | None]:
    try:
        errs = resp.json().get("errors") or []
        return errs[0].get("resource"), errs[0].get("field")
    except (ValueError, AttributeError, IndexError, TypeError):
        return None, None


class StravaClient:
    """Calls Strava on behalf of one user of the app."""

    def __init__(
        self,
        *,
        user_id: str,
        client_id: str,
        client_secret: SecretStr,
        token_store: TokenStore,
        budget: RateLimitBudget,
        api_url: str = DEFAULT_API_URL,
        oauth_url: str = DEFAULT_OAUTH_URL,
        max_retries: int = 5,
        backoff_base_seconds: float = 0.5,
        backoff_max_seconds: float = 30.0,
        timeout_seconds: float = 30.0,
        refresh_margin_seconds: float = 300.0,
        logger: logging.Logger | logging.LoggerAdapter | Any = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.user_id = user_id
        self._client_id = client_id
        self._client_secret = client_secret
        self._store = token_store
        self.budget = budget
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url
        self._max_retries = max_retries
        self._backoff = (backoff_base_seconds, backoff_max_seconds)
        self._refresh_margin = refresh_margin_seconds
        self._log = logger or log
        self._sleep = sleep
        self.stats = RequestStats()
        self._http = httpx.Client(
            timeout=timeout_seconds,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            transport=TimedTransport(self.stats.latency),
        )
        self._tokens: StravaTokens | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StravaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- retries -------------------------------------------------------------------------
    def _retrying(self) -> Retrying:
        def before_sleep(state: RetryCallState) -> None:
            self.stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            self._log.warning(
                f"Strava call failed ({exc}); retry {state.attempt_number}/{self._max_retries}"
            )

        kwargs: dict[str, Any] = {}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_random_exponential(multiplier=self._backoff[0], max=self._backoff[1]),
            stop=stop_after_attempt(self._max_retries + 1),
            before_sleep=before_sleep,
            reraise=True,
            **kwargs,
        )

    def _count_error(self, err: SyncError) -> SyncError:
        key = err.type.value
        self.stats.errors_by_type[key] = self.stats.errors_by_type.get(key, 0) + 1
        return err

    # -- OAuth ---------------------------------------------------------------------------
    def _token_request(self, data: dict[str, str]) -> dict[str, Any]:
        """POST /oauth/token with retries for transient failures; classified errors otherwise."""

        def once() -> dict[str, Any]:
            self.stats.token_calls += 1
            self.stats.http_requests += 1
            try:
                resp = self._http.post(self.oauth_url, data=data)
            except httpx.TransportError as exc:
                raise self._count_error(
                    SyncError(
                        ErrorType.NETWORK, f"{type(exc).__name__} calling the Strava token endpoint"
                    )
                ) from None
            if resp.status_code >= 500:
                raise self._count_error(
                    SyncError(
                        ErrorType.SERVER,
                        f"Strava token endpoint answered {resp.status_code}",
                        status_code=resp.status_code,
                    )
                )
            if resp.status_code in (400, 401, 403):
                resource, fld = _error_field(resp)
                if resource == "Application" or fld in ("client_id", "client_secret"):
                    raise self._count_error(
                        SyncError(
                            ErrorType.CONFIGURATION,
                            "Strava rejected the application credentials (check "
                            "STRAVA_CLIENT_ID / STRAVA_CLIENT_SECRET): "
                            f"{_strava_message(resp)}",
                            retryable=False,
                            status_code=resp.status_code,
                        )
                    )
                raise self._count_error(
                    AuthenticationError(
                        f"Strava rejected the grant for user {self.user_id}: "
                        f"{_strava_message(resp)}",
                        status_code=resp.status_code,
                    )
                )
            if resp.status_code != 200:
                raise self._count_error(
                    SyncError(
                        ErrorType.CLIENT,
                        f"Strava token endpoint answered {resp.status_code}: "
                        f"{_strava_message(resp)}",
                        retryable=False,
                        status_code=resp.status_code,
                    )
                )
            try:
                body = resp.json()
                assert isinstance(body, dict) and body["access_token"] and body["expires_at"]
            except (ValueError, AssertionError, KeyError):
                raise self._count_error(
                    SyncError(
                        ErrorType.INVALID_RESPONSE, "Strava token endpoint sent an unusable body"
                    )
                ) from None
            return body

        retries = 0
        try:
            for attempt in self._retrying():
                with attempt:
                    retries = attempt.retry_state.attempt_number - 1
                    return once()
        except SyncError as err:
            raise err.within(api_endpoint="POST /oauth/token", retry_count=retries) from None
        raise AssertionError("unreachable")

    def _refresh(
        self, current: StravaTokens, *, force: bool, stale_access: str | None
    ) -> StravaTokens:
        """Runs under the token store's per-user lock: refresh unless someone else just did."""
        fresh_enough = not current.expires_within(self._refresh_margin, self.budget.server_now())
        replaced = stale_access is not None and (
            current.access_token.get_secret_value() != stale_access
        )
        if (fresh_enough and not force) or replaced:
            return current
        body = self._token_request(
            {
                "client_id": self._client_id,
                "client_secret": self._client_secret.get_secret_value(),
                "grant_type": "refresh_token",
                "refresh_token": current.refresh_token.get_secret_value(),
            }
        )
        previous = current.refresh_token.get_secret_value()
        rotated = body.get("refresh_token") or previous
        note = " (refresh token rotated)" if rotated != previous else ""
        self._log.info(f"refreshed the Strava access token of user {self.user_id}{note}")
        return StravaTokens(
            access_token=body["access_token"],
            refresh_token=rotated,
            expires_at=int(body["expires_at"]),
        )

    def _access_token(self, *, force: bool = False) -> str:
        tokens = self._tokens
        if tokens is None:
            tokens = self._store.get(self.user_id).tokens
        needs = force or tokens.expires_within(self._refresh_margin, self.budget.server_now())
        if needs:
            stale = tokens.access_token.get_secret_value() if force else None
            try:
                tokens = self._store.update_tokens(
                    self.user_id, lambda cur: self._refresh(cur, force=force, stale_access=stale)
                )
            except AuthenticationError as exc:
                self._store.mark_revoked(self.user_id, exc.message)
                raise
        self._tokens = tokens
        return tokens.access_token.get_secret_value()

    # -- scopes --------------------------------------------------------------------------
    def scope_notes(self) -> list[str]:
        """What the scopes the athlete granted leave out (none when unknown), or a
        non-retryable PERMISSION_DENIED when activities cannot be listed at all."""
        return scope_notes(self._store.get(self.user_id).scopes, self.user_id)

    # -- API -----------------------------------------------------------------------------
    def _send_once(self, path: str, params: dict[str, Any]) -> Any:
        """One logical GET: waits on the budget, refreshes on 401 once, waits out a 429."""
        refreshed = False
        refusals = 0
        while True:
            token = self._access_token(force=False)
            waits_before = self.budget.waits
            self.budget.acquire(is_read=True)
            self.stats.rate_limit_waits += self.budget.waits - waits_before
            self.stats.http_requests += 1
            try:
                resp = self._http.get(
                    f"{self.api_url}{path}",
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.TransportError as exc:
                raise self._count_error(
                    SyncError(ErrorType.NETWORK, f"{type(exc).__name__} on GET {path}")
                ) from None
            self.budget.observe(resp.headers, status_code=resp.status_code)
            if resp.status_code == 401 and (_error_field(resp)[1] or "").endswith("permission"):
                raise self._count_error(
                    SyncError(
                        ErrorType.PERMISSION_DENIED,
                        f"user {self.user_id} did not grant the scope GET {path} needs: "
                        f"{_strava_message(resp)}; reconnect with activity:read_all",
                        retryable=False,
                        status_code=401,
                    )
                )
            if resp.status_code == 401 and not refreshed:
                # Expired early, or revoked: one forced refresh tells which.
                refreshed = True
                self.stats.auth_retries += 1
                self._access_token(force=True)
                continue
            if resp.status_code == 429:
                self.stats.http_429 += 1
                refusals += 1
                self._log.warning(f"Strava answered 429 on GET {path}: {self.budget.usage()}")
                if refusals >= MAX_429_PER_REQUEST:
                    raise self._count_error(
                        RateLimitError(
                            f"Strava refused GET {path} {refusals} times in a row (429) even after "
                            "waiting for the window to reset",
                            retry_after=datetime.now(UTC) + timedelta(minutes=15),
                        )
                    )
                continue  # acquire() now waits for the reset, or raises RateLimitError
            break
        if resp.status_code == 401:
            err = AuthenticationError(
                f"Strava refused the access token of user {self.user_id}: {_strava_message(resp)}",
                status_code=401,
            )
            self._store.mark_revoked(self.user_id, err.message)
            raise self._count_error(err)
        if resp.status_code == 403:
            raise self._count_error(
                SyncError(
                    ErrorType.PERMISSION_DENIED,
                    f"GET {path} forbidden: {_strava_message(resp)}",
                    retryable=False,
                    status_code=403,
                )
            )
        try:
            return response_json(resp, f"GET {path}", _strava_message)
        except SyncError as err:
            raise self._count_error(err) from None

    def _get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        endpoint: str | None = None,
        activity_id: int | None = None,
    ) -> Any:
        """GET with retries; a failure says which endpoint (`endpoint`: its template, when
        `path` holds an id) and how many retries it had (`ErrorContext`)."""
        retries = 0
        try:
            for attempt in self._retrying():
                with attempt:
                    retries = attempt.retry_state.attempt_number - 1
                    return self._send_once(path, params or {})
        except SyncError as err:
            raise err.within(
                api_endpoint=f"GET {endpoint or path}",
                retry_count=retries,
                activity_id=str(activity_id) if activity_id is not None else None,
            ) from None
        raise AssertionError("unreachable")

    def athlete(self) -> dict[str, Any]:
        self.stats.athlete_calls += 1
        body = self._get("/athlete")
        if not isinstance(body, dict):
            raise SyncError(ErrorType.INVALID_RESPONSE, "GET /athlete did not return an object")
        return body

    def activity(self, activity_id: int) -> dict[str, Any] | None:
        """`GET /activities/{id}` (one read request), or None when Strava has no such activity
        for this athlete (deleted since, or not theirs)."""
        self.stats.activity_calls += 1
        try:
            body = self._get(
                f"/activities/{int(activity_id)}",
                endpoint="/activities/{id}",
                activity_id=int(activity_id),
            )
        except SyncError as err:
            if err.type == ErrorType.CLIENT and err.status_code == 404:
                return None
            raise
        if not isinstance(body, dict):
            raise SyncError(ErrorType.INVALID_RESPONSE, "GET /activities/{id} is not an object")
        return body

    def iter_activity_pages(
        self,
        after: datetime,
        before: datetime,
        *,
        cursor: ListCursor | None = None,
        first_page: int = 1,
        seen: set[int] | None = None,
    ) -> Iterator[ActivityPage]:
        """Every activity with `after <= start_date < before`, page by page, in Strava's order.

        Keyset pagination in whichever order Strava answers (see `strava_listing`): the order
        is read from each page, the bound in that direction moves with a one-second overlap
        (duplicates dropped by id), so activities added or deleted mid-listing can neither
        shift a page nor be fetched twice, and the listing stops at the first short page. A
        page in no order, or a change of order, raises a retryable INVALID_RESPONSE. `cursor`,
        `first_page` and `seen` (ids already fetched) resume a listing from a checkpoint.
        """
        window = ListCursor.start(after, before)
        current = cursor or window
        seen = set(seen or ())
        seen_unidentified: set[str] = set()
        page_no = first_page - 1
        while True:
            page_no += 1
            self.stats.list_calls += 1
            body = self._get(
                "/athlete/activities",
                {
                    "after": current.after,
                    "before": current.before,
                    "page": current.page,
                    "per_page": PAGE_SIZE,
                },
            )
            if not isinstance(body, list):
                raise SyncError(
                    ErrorType.INVALID_RESPONSE, "GET /athlete/activities did not return a list"
                )
            # Only starts inside the window say anything about order or move a bound: a
            # damaged record dated 2999 (or 1900) must not make the listing skip or repeat.
            starts = [
                s
                for s in (start_epoch(r) for r in body)
                if s is not None and window.after < s < window.before
            ]
            order = read_order(current, starts, page_no)
            fresh = []
            for record in body:
                rid = record.get("id") if isinstance(record, dict) else None
                if isinstance(rid, int):
                    if rid in seen:
                        continue
                    seen.add(rid)
                else:
                    # No usable id (a damaged record): the overlap may serve it again, so
                    # recognise it by its content rather than quarantine it twice.
                    digest = json.dumps(record, sort_keys=True, default=str)
                    if digest in seen_unidentified:
                        continue
                    seen_unidentified.add(digest)
                fresh.append(record)
            current = advance(current, order, starts)
            yield ActivityPage(number=page_no, records=fresh, received=len(body), cursor=current)
            if len(body) < PAGE_SIZE:
                return


READ_ALL = "activity:read_all"
ACTIVITY_SCOPES = frozenset({"activity:read", READ_ALL})


def parse_scopes(scopes: str | None) -> frozenset[str]:
    """Strava's `scope` of the OAuth redirect: comma separated (spaces tolerated)."""
    return frozenset(s for s in (scopes or "").replace(" ", ",").split(",") if s)


def scope_notes(scopes: str | None, user_id: str) -> list[str]:
    """Notes for a sync of a connection with these granted scopes (None: not recorded).

    Without `activity:read` or `activity:read_all` Strava lists nothing: that is a
    non-retryable PERMISSION_DENIED before any request is spent. With `activity:read` alone
    the sync runs, and says that private ("Only You") activities cannot be seen.
    """
    if scopes is None:
        return []
    granted = parse_scopes(scopes)
    if not granted & ACTIVITY_SCOPES:
        raise SyncError(
            ErrorType.PERMISSION_DENIED,
            f"user {user_id} granted only {','.join(sorted(granted)) or 'no scope'}: listing "
            "activities needs activity:read (activity:read_all for private ones); reconnect "
            "through Strava's authorize page with scope=read,activity:read_all",
            retryable=False,
        )
    if READ_ALL not in granted:
        return [
            "private activities cannot be seen: the athlete granted activity:read without "
            "activity:read_all (reconnect with activity:read_all to include them)"
        ]
    return []


def _grant(
    grant: dict[str, str],
    what: str,
    *,
    client_id: str,
    client_secret: SecretStr,
    oauth_url: str,
    timeout_seconds: float,
) -> dict[str, Any]:
    """One `POST /oauth/token` outside any stored connection (connecting a user): its body,
    or a classified error that names no secret."""
    with httpx.Client(timeout=timeout_seconds, headers={"User-Agent": USER_AGENT}) as http:
        try:
            resp = http.post(
                oauth_url,
                data={
                    "client_id": client_id,
                    "client_secret": client_secret.get_secret_value(),
                    **grant,
                },
            )
        except httpx.TransportError as exc:
            raise SyncError(ErrorType.NETWORK, f"{type(exc).__name__} calling Strava") from None
    if resp.status_code >= 500:
        raise SyncError(
            ErrorType.SERVER,
            f"Strava's token endpoint answered {resp.status_code}",
            status_code=resp.status_code,
        )
    if resp.status_code != 200:
        resource, fld = _error_field(resp)
        if resource == "Application" or fld in ("client_id", "client_secret"):
            raise SyncError(
                ErrorType.CONFIGURATION,
                "Strava rejected the application credentials (check STRAVA_CLIENT_ID / "
                f"STRAVA_CLIENT_SECRET): {_strava_message(resp)}",
                retryable=False,
                status_code=resp.status_code,
            )
        raise AuthenticationError(
            f"Strava refused the {what}: {_strava_message(resp)}", status_code=resp.status_code
        )
    try:
        body = resp.json()
        StravaTokens(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            expires_at=int(body["expires_at"]),
        )
    except (ValueError, KeyError, TypeError):
        raise SyncError(
            ErrorType.INVALID_RESPONSE, "Strava's token endpoint sent an unusable body"
        ) from None
    return body


def _tokens(body: dict[str, Any]) -> StravaTokens:
    return StravaTokens(
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        expires_at=int(body["expires_at"]),
    )


def exchange_code(
    *,
    client_id: str,
    client_secret: SecretStr,
    code: str,
    oauth_url: str = DEFAULT_OAUTH_URL,
    timeout_seconds: float = 30.0,
) -> tuple[StravaTokens, dict[str, Any], str | None]:
    """Strava's OAuth code exchange: returns (tokens, athlete summary, granted scope).

    Strava's answer does not carry the scope (it comes on the redirect, `scope=`): the third
    item is only there if a server adds it."""
    body = _grant(
        {"code": code, "grant_type": "authorization_code"},
        "authorization code",
        client_id=client_id,
        client_secret=client_secret,
        oauth_url=oauth_url,
        timeout_seconds=timeout_seconds,
    )
    return _tokens(body), body.get("athlete") or {}, body.get("scope")


def refresh_grant(
    *,
    client_id: str,
    client_secret: SecretStr,
    refresh_token: str,
    oauth_url: str = DEFAULT_OAUTH_URL,
    timeout_seconds: float = 30.0,
) -> StravaTokens:
    """A refresh token given by hand (`sync-assets connect --refresh-token`), proved before
    anything is stored: the fresh pair (Strava may rotate the refresh token)."""
    body = _grant(
        {"refresh_token": refresh_token, "grant_type": "refresh_token"},
        "refresh token",
        client_id=client_id,
        client_secret=client_secret,
        oauth_url=oauth_url,
        timeout_seconds=timeout_seconds,
    )
    return _tokens(body)
