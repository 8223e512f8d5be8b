"""What JSON both databases can store: PostgreSQL's text and jsonb refuse NUL characters, lone
surrogates (not UTF-8) and NaN or infinity, which Python's `json` would happily write. Strava
payloads, push events and staged pages are checked here before they reach a column."""

import math
from typing import Any


def unstorable(value: Any, max_depth: int | None = None) -> str | None:
    """The first place in `value` no JSON column can hold, as "field.path: what", or None."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if max_depth is not None and depth > max_depth:
            return f"{path or 'value'}: nested deeper than {max_depth} levels"
        for text, what in ((path, "key"), (item, "text")):
            if isinstance(text, str):
                if "\x00" in text:
                    return f"{path or 'value'}: {what} contains a NUL character"
                try:
                    text.encode()
                except UnicodeEncodeError:
                    return f"{path or 'value'}: {what} is not valid Unicode (lone surrogate)"
        if isinstance(item, float) and not math.isfinite(item):
            return f"{path or 'value'}: {item} is not a JSON number"
        if isinstance(item, dict):
            prefix = f"{path}." if path else ""
            stack.extend((f"{prefix}{k}", v, depth + 1) for k, v in item.items())
        elif isinstance(item, list):
            prefix = f"{path}." if path else ""
            stack.extend((f"{prefix}{i}", v, depth + 1) for i, v in enumerate(item))
    return None
