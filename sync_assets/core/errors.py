"""Failure classification shared by every part of a sync.

A sync fails in a handful of ways that call for different reactions: retry soon (network, 5xx),
retry after a known time (rate limit), or stop and ask a human (revoked token, bad config).
`SyncError` carries that decision with the error so callers never re-guess it from strings, and
`ErrorInfo` is the shape stored in `sync_sessions.last_error`: it never holds a secret.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorType(StrEnum):
    """What went wrong, in terms that decide what to do next."""

    AUTHENTICATION = "AUTHENTICATION"  # token revoked/invalid, wrong client secret: needs a human
    PERMISSION_DENIED = "PERMISSION_DENIED"  # the athlete did not grant the scope we need
    RATE_LIMIT = "RATE_LIMIT"  # the app-wide Strava budget is spent until `retry_after`
    NETWORK = "NETWORK"  # connection refused/reset/timeout
    SERVER = "SERVER"  # 5xx from the provider
    INVALID_RESPONSE = "INVALID_RESPONSE"  # 200 with a body we cannot parse
    CLIENT = "CLIENT"  # other 4xx: our request is wrong, retrying will not help
    VALIDATION = "VALIDATION"  # a record failed validation (quarantined, not fatal)
    CONFIGURATION = "CONFIGURATION"  # missing or inconsistent settings
    DATABASE = "DATABASE"
    UNKNOWN = "UNKNOWN"


RETRYABLE_TYPES = frozenset(
    {
        ErrorType.RATE_LIMIT,
        ErrorType.NETWORK,
        ErrorType.SERVER,
        ErrorType.INVALID_RESPONSE,
        ErrorType.DATABASE,
    }
)


class ErrorContext(BaseModel):
    """Where a failure happened, as the seed's `ErrorReport.context` names it (its JSON uses
    those names): the request that failed and how often it was tried, or the activity or
    store batch concerned. Never a token, a secret or a request's query string."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    api_endpoint: str | None = Field(None, alias="apiEndpoint")  # "GET /athlete/activities"
    http_status: int | None = Field(None, alias="httpStatus")
    retry_count: int = Field(0, alias="retryCount")  # retries made before giving up
    activity_id: str | None = Field(None, alias="activityId")
    batch_id: str | None = Field(None, alias="batchId")


class ErrorInfo(BaseModel):
    """The serialisable description of a failure, as stored in `sync_sessions.last_error`:
    with the seed's `ErrorReport` fields where they apply (`context`, `phase`, `resolved`,
    set once a later run of the same work succeeded)."""

    type: ErrorType
    message: str
    retryable: bool
    retry_after: datetime | None = None
    status_code: int | None = None
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    details: dict[str, Any] = Field(default_factory=dict)
    context: ErrorContext = Field(default_factory=ErrorContext)
    phase: str | None = None  # the session's state when it failed (`SyncState`)
    resolved: bool = False


class SyncError(Exception):
    """An error whose type says whether (and when) it is worth trying again."""

    def __init__(
        self,
        type: ErrorType,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after: datetime | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        context: ErrorContext | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type
        self.message = message
        self.retryable = type in RETRYABLE_TYPES if retryable is None else retryable
        self.retry_after = retry_after
        self.status_code = status_code
        self.details = details or {}
        self.context = context or ErrorContext(http_status=status_code)

    def within(self, **context: Any) -> SyncError:
        """Add where it happened (`ErrorContext` fields) to what is not known yet, so that
        the innermost call that failed (a token refresh within a listing) keeps its own
        endpoint and retries; returns `self`."""
        known = self.context.model_dump(by_alias=False, exclude_defaults=True)
        self.context = ErrorContext(**{**context, **known})
        return self

    def info(self) -> ErrorInfo:
        return ErrorInfo(
            type=self.type,
            message=self.message,
            retryable=self.retryable,
            retry_after=self.retry_after,
            status_code=self.status_code,
            details=self.details,
            context=self.context,
        )

    def __str__(self) -> str:
        suffix = f" (retry after {self.retry_after.isoformat()})" if self.retry_after else ""
        return f"{self.type.value}: {self.message}{suffix}"


class AuthenticationError(SyncError):
    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(ErrorType.AUTHENTICATION, message, retryable=False, **kw)


class RateLimitError(SyncError):
    def __init__(self, message: str, *, retry_after: datetime, **kw: Any) -> None:
        super().__init__(
            ErrorType.RATE_LIMIT, message, retryable=True, retry_after=retry_after, **kw
        )


def is_transient(exc: BaseException) -> bool:
    """Worth retrying right away (with backoff): retryable, and not a spent rate budget, which
    has its own wait."""
    return isinstance(exc, SyncError) and exc.retryable and exc.type != ErrorType.RATE_LIMIT
