"""Polling contract: run_source saves a cursor only after the ack; backoff bounds."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from monitor.records import Post, parse_post
from monitor.sources.base import (
    Page,
    Rejected,
    SourceHealth,
    backoff_seconds,
    run_source,
)


def _post(n: int) -> Post:
    return parse_post(
        {"id": f"s:{n}", "text": f"t{n}", "published_at": "2026-01-01T00:00:00+00:00"}
    )


class _Pages:
    def __init__(self, pages: list[Page | Exception]) -> None:
        self.pages = pages
        self.seen: list[str | None] = []

    async def fetch(self, cursor: str | None) -> Page:
        self.seen.append(cursor)
        item = self.pages.pop(0) if self.pages else Page(cursor=cursor)
        if isinstance(item, Exception):
            raise item
        return item

    async def close(self) -> None:
        return None


class _Cursors:
    def __init__(self) -> None:
        self.saved: dict[str, str] = {}

    async def load(self, source: str) -> str | None:
        return self.saved.get(source)

    async def save(self, source: str, cursor: str) -> None:
        self.saved[source] = cursor


@given(st.integers(min_value=0, max_value=200), st.floats(min_value=0.01, max_value=10))
def test_backoff_stays_within_cap(attempt: int, base: float) -> None:
    delay = backoff_seconds(attempt, base=base, cap=30.0, rng=random.Random(attempt))
    assert 0.0 <= delay <= min(30.0, base * 2**attempt)


def test_cursor_saved_after_ack_and_errors_retried() -> None:
    cursors = _Cursors()
    published: list[str] = []
    fetcher = _Pages(
        [
            Page(posts=(_post(1),), cursor="c1", more=True),
            RuntimeError("boom"),
            Page(
                posts=(_post(2),),
                rejected=(Rejected(0, "mapping", "no text"),),
                cursor="c2",
            ),
        ]
    )
    stop = asyncio.Event()

    async def publish(posts: Sequence[Post]) -> None:
        # The cursor of a page is never saved before its posts are acknowledged.
        assert cursors.saved.get("s") != "c2" or len(published) >= 2
        published.extend(p.id for p in posts)

    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) >= 2:
            stop.set()

    health = asyncio.run(
        run_source("s", fetcher, cursors, publish, interval=5.0, stop=stop, sleep=sleep)
    )
    assert published == ["s:1", "s:2"]
    assert cursors.saved == {"s": "c2"}
    assert fetcher.seen == [None, "c1", "c1"]
    assert isinstance(health, SourceHealth)
    assert health.errors == 1 and health.accepted == 2
    assert health.rejected == {"mapping": 1}
    assert sleeps[-1] == 5.0


def test_a_long_retry_after_is_waited_between_polls() -> None:
    from monitor.sources.http import FetchError

    # More than a request waits itself: the request gave up at once.
    refused = FetchError(
        "s", "http://api.example/r", "HTTP 429", status=429, retry_after=120.0
    )
    fetcher = _Pages([refused])
    stop = asyncio.Event()
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        stop.set()

    async def publish(posts: Sequence[Post]) -> None:
        return None

    asyncio.run(
        run_source(
            "s",
            fetcher,
            _Cursors(),
            publish,
            interval=5.0,
            stop=stop,
            sleep=sleep,
            backoff_cap=300.0,
        )
    )
    assert sleeps == [120.0]  # not the first backoff step (at most 1 s)


def test_lookup_follows_dotted_paths() -> None:
    from monitor.sources.http_poll import lookup

    doc = {"data": {"items": [{"user": {"nick": "a"}}]}}
    assert lookup(doc, "data.items.0.user.nick") == "a"


def test_retry_after_reads_seconds_and_dates_and_caps() -> None:
    from datetime import datetime, timezone

    from monitor.sources.http_poll import retry_after_seconds

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert retry_after_seconds("7", now=now) == 7.0
    assert retry_after_seconds("99999", now=now, cap=60) == 60
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:10 GMT", now=now) == 10.0
    assert retry_after_seconds("junk", now=now) is None


def test_headers_hidden_from_repr() -> None:
    from monitor.sources.http_poll import HttpPollOptions

    opts = HttpPollOptions(name="r", url="http://x", headers={"Authorization": "s3"})
    assert "s3" not in repr(opts)
