"""What every HTTP client of the project does with an answer it did not handle itself."""

from collections.abc import Callable
from typing import Any

import httpx

from sync_assets.errors import ErrorType, SyncError


def response_json(
    resp: httpx.Response, what: str, describe: Callable[[httpx.Response], str]
) -> Any:
    """The JSON body of a 200 answer; otherwise the classified error: 5xx and unparsable bodies
    are retryable, any other status is not (`describe` condenses the API's error body)."""
    if resp.status_code >= 500:
        raise SyncError(
            ErrorType.SERVER, f"{what} answered {resp.status_code}", status_code=resp.status_code
        )
    if resp.status_code != 200:
        raise SyncError(
            ErrorType.CLIENT,
            f"{what} answered {resp.status_code}: {describe(resp)}",
            retryable=False,
            status_code=resp.status_code,
        )
    try:
        return resp.json()
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        kind = resp.headers.get("content-type", "no content type").split(";")[0].strip()
        raise SyncError(
            ErrorType.INVALID_RESPONSE,
            f"{what} sent a body that is not JSON ({kind}, {len(resp.content)} bytes, "
            f"{type(exc).__name__})",
            status_code=200,
        ) from None
