"""HTTP JSON polling: options and the pure parts (dotted paths, Retry-After).

The fetcher itself (aiohttp session, pagination, ETag) is still to come.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Literal

MAX_PATH_DEPTH = 16


@dataclass(frozen=True)
class HttpPollOptions:
    """One http_poll source, close to its YAML entry.

    Attributes:
        name: The source name; post ids are `<name>:<vendor id>`.
        url: URL template; `{cursor}` and `{page}` are filled in.
        interval_seconds: Seconds between polls once no page is ready.
        items: Dotted path to the list of items in the response.
        cursor: Dotted path to the next cursor (None: page pagination or none).
        map: Post field -> dotted path into an item.
        constants: Post field -> constant value (`source` defaults to `name`).
        headers: Resolved secret headers; never logged (hidden from repr).
        pagination: "cursor" or "page".
        max_pages_per_poll: Pages fetched in one poll at most.
        rate_per_second: Requests per second at most (token bucket).
        timeout_seconds: Total timeout of one request.
        retries: Retries of one request on 429/5xx/timeouts.
        max_body_bytes: Largest response body accepted.

    """

    name: str
    url: str
    interval_seconds: float = 30.0
    items: str = "items"
    cursor: str | None = None
    map: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    pagination: Literal["cursor", "page"] = "cursor"
    max_pages_per_poll: int = 10
    rate_per_second: float = 5.0
    timeout_seconds: float = 10.0
    retries: int = 3
    max_body_bytes: int = 10 * 1024 * 1024


def lookup(item: Any, path: str) -> Any:
    """Follow a dotted path (`user.nick`, `items.0.id`) into decoded JSON.

    Raises:
        KeyError: A step is missing or the path is deeper than MAX_PATH_DEPTH.

    """
    steps = path.split(".")
    if len(steps) > MAX_PATH_DEPTH:
        raise KeyError(f"path deeper than {MAX_PATH_DEPTH}: {path}")
    value = item
    for step in steps:
        if isinstance(value, Mapping) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            raise KeyError(f"no {step!r} in {path!r}")
    return value


def retry_after_seconds(
    header: str | None, *, now: datetime, cap: float = 300.0
) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date), capped.

    Returns None when the header is absent or unreadable.
    """
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return min(cap, float(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(cap, max(0.0, (when - now).total_seconds()))
