"""Keep secrets that travel in URLs out of log lines.

OpenWeatherMap only takes its key as the `appid` query parameter, and httpx logs every
request's full URL at INFO level: this filter, on httpx's loggers, rewrites such values.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = re.compile(
    r"(?i)\b(appid|api_?key|key|access_token|refresh_token|client_secret|code)=[^&\s\"']+"
)


def redact(text: str) -> str:
    return SECRET_PARAMS.sub(r"\1=REDACTED", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_FILTER = RedactSecrets()


def install(*logger_names: str) -> None:
    """Add the filter to these loggers (idempotent)."""
    for name in logger_names or ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
