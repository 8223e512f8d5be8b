"""A Strava API v3 stand-in that a real client cannot tell from Strava (only base URLs differ).

It is a product feature (offline demos, users' own tests, fault injection), so what it copies
is Strava's documented behaviour, from developers.strava.com:

* API reference, "List Athlete Activities" (`GET /api/v3/athlete/activities`): query `before`
  and `after` (integer epoch seconds, strict bounds: `start_date < before`,
  `start_date > after`), `page` (default 1) and `per_page` (default 30, at most 200; larger
  values are clamped to 200; 0, negative or non-integer values are a 400). Strava documents
  no order: clients see newest first by default and oldest first when only `after` is given;
  with both bounds it is unknown. `list_order` plays each possibility (see `LIST_ORDERS`);
  the default, `oldest-first-with-after`, lists oldest first (start_date, then id) whenever
  `after` is given and newest first otherwise. It answers
  SummaryActivity objects and needs a Bearer token with scope `activity:read` or
  `activity:read_all`; private activities (`"private": true`, visibility "only_me") are listed
  only with `activity:read_all`. `GET /api/v3/athlete` answers the authenticated athlete
  (detailed, resource_state 3, with `profile:read_all`; a summary, resource_state 2, without).
* "Rate Limits": limits are per application, shared by all its athletes. Default overall limit
  200 requests / 15 minutes and 2,000 / day; default read ("non-upload") limit 100 / 15 minutes
  and 1,000 / day. The 15-minute windows reset at :00, :15, :30 and :45 (UTC clock), the daily
  one at midnight UTC. All requests count, refused ones included, so requests over the short
  limit still count toward the daily one. Over a limit: HTTP 429 with `{"message": "Rate Limit
  Exceeded", "errors": [{"resource": "Application", "field": "rate limit", "code":
  "exceeded"}]}`. Every API response (4xx, 429 and 5xx the API produces included) carries
  `X-RateLimit-Limit: "200,2000"`, `X-RateLimit-Usage: "u15,uday"`, `X-ReadRateLimit-Limit:
  "100,1000"` and `X-ReadRateLimit-Usage: "r15,rday"` (each "15-minute,daily"). GET requests
  count against the overall and the read limits, other API requests only against the overall
  ones. The OAuth endpoint is not metered and carries no such headers.
* "Authentication": `POST /oauth/token` (form-encoded; JSON and query parameters are accepted
  too) with `client_id`, `client_secret` and `grant_type` = `authorization_code` (with `code`)
  or `refresh_token` (with `refresh_token`). It answers `{"token_type": "Bearer",
  "access_token", "expires_at", "expires_in", "refresh_token"}`, plus the summary `athlete`
  for a code. Access tokens last six hours. A refresh returns a new access token and may return
  a new refresh token, after which the old one no longer works. Codes are single use. A wrong
  client id or secret is a 401 `{"message": "Bad Request", "errors": [{"resource":
  "Application", "field": "client_secret" (or "client_id"), "code": "invalid"}]}`; an unknown
  refresh token a 400 with resource "RefreshToken", field "refresh_token", code "invalid"; a bad
  code a 400 with resource "AuthorizationCode", field "code"; a missing parameter a 400 with code
  "missing". `POST /oauth/deauthorize` revokes the application's access for the athlete.
* Errors of the API: an invalid, expired or revoked access token is a 401 `{"message":
  "Authorization Error", "errors": [{"resource": "Athlete", "field": "access_token", "code":
  "invalid"}]}`; a token without an activity scope listing activities is a 401 with field
  "activity:read_permission", code "missing"; an unknown path is a 404 `{"message": "Record Not
  Found", "errors": [{"resource": "resource", "field": "path", "code": "invalid"}]}`.
* "Webhook Events" are not implemented.

JSON answers have `Content-Type: application/json; charset=utf-8`, and every answer a `Date`
header from the sandbox clock (`now()`, settable), which also drives the rate-limit windows and
token expiry: a client that aligns its windows and expiry on `Date` is tested for real.

Beyond Strava, `StravaSandbox` keeps the ground truth (`activities()`), a request log, and
fault injection (`Faults`: latency, 5xx, dropped connections, truncated bodies, malformed pages
and activities, mid-sync revocation, outages, activities added and deleted between pages).
Its Python API is mirrored over HTTP under `/_sandbox/` for a sandbox run as its own process.
Gateway faults (dropped connections, HTML 502/503 pages, outages) happen in front of the API:
they are not metered and carry no rate-limit headers; an injected 500 comes from the API.
"""

from __future__ import annotations

from sync_assets_sandbox.strava.api import ApiMixin
from sync_assets_sandbox.strava.common import (
    ACTIVITY_SCOPES,
    DAY,
    DEFAULT_LIST_ORDER,
    DEFAULT_PER_PAGE,
    FIRST_ATHLETE_ID,
    JSON_TYPE,
    LIST_ORDERS,
    MAX_LOGGED_REQUESTS,
    MAX_PER_PAGE,
    QUARTER_HOUR,
    SECRET_PARAMS,
    AthleteHandle,
    Response,
    SandboxError,
    UnknownRecord,
    checked_list_order,
)
from sync_assets_sandbox.strava.control import ControlMixin, common_control
from sync_assets_sandbox.strava.faults import CORRUPTIONS, FaultMixin, Faults
from sync_assets_sandbox.strava.limits import RateLimitMixin, RateLimits
from sync_assets_sandbox.strava.oauth import OAuthMixin
from sync_assets_sandbox.strava.state import SandboxState


class StravaSandbox(ApiMixin, OAuthMixin, RateLimitMixin, FaultMixin, ControlMixin, SandboxState):
    """All the state of one sandboxed Strava application; thread-safe (one lock).

    Its parts: `SandboxState` (clock, athletes, tokens, ground truth), `ApiMixin` (HTTP entry
    point, request log, API), `OAuthMixin`, `RateLimitMixin`, `FaultMixin`, `ControlMixin`
    (`/_sandbox/`).
    """


__all__ = [
    "ACTIVITY_SCOPES",
    "AthleteHandle",
    "CORRUPTIONS",
    "DAY",
    "DEFAULT_LIST_ORDER",
    "DEFAULT_PER_PAGE",
    "FIRST_ATHLETE_ID",
    "Faults",
    "JSON_TYPE",
    "LIST_ORDERS",
    "MAX_LOGGED_REQUESTS",
    "MAX_PER_PAGE",
    "QUARTER_HOUR",
    "RateLimits",
    "Response",
    "SECRET_PARAMS",
    "SandboxError",
    "StravaSandbox",
    "UnknownRecord",
    "checked_list_order",
    "common_control",
]
