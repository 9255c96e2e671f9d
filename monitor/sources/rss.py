"""RSS 2.0 and Atom feeds: options (the fetcher and parser are still to come)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RssOptions:
    """One rss source, close to its YAML entry.

    Attributes:
        name: The source name; post ids are `<name>:<guid or id>`, or
            `<name>:` + the first 32 hex digits of sha256(link) when an entry has none.
        url: The feed's URL.
        interval_seconds: Seconds between polls.
        headers: Resolved secret headers; never logged (hidden from repr).
        rate_per_second: Requests per second at most.
        timeout_seconds: Total timeout of one request.
        retries: Retries of one request on 429/5xx/timeouts.
        max_body_bytes: Largest feed body accepted.

    """

    name: str
    url: str
    interval_seconds: float = 300.0
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    rate_per_second: float = 1.0
    timeout_seconds: float = 10.0
    retries: int = 3
    max_body_bytes: int = 10 * 1024 * 1024
