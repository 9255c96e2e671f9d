"""The polling fetchers against real aiohttp servers that misbehave on purpose.

A vendor API (paged JSON by cursor or page number) and RSS/Atom feeds are served
on a free port of 127.0.0.1; faults are queued per request: 500s, 429 with
Retry-After, a handler slower than the fetcher's timeout, malformed JSON, a page
repeating items, a cursor going back in time, HTML instead of JSON, a body over
the limit, ETag 304. The fetchers are driven through ``run_source`` with an
in-memory cursor store; waits go through an injected fake clock, so nothing
sleeps for long.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web

from monitor.local.embedded import free_port
from monitor.records import Post
from monitor.sources.base import Fetcher, Rejected, SourceHealth, run_source
from monitor.sources.http import FetchError
from monitor.sources.http_poll import HttpPollFetcher, HttpPollOptions, decode_state
from monitor.sources.rss import RssFetcher, RssOptions

pytestmark = pytest.mark.integration

TOKEN = "Bearer s3cr3t-token"
PAGE_SIZE = 3
BASE_TIME = datetime(2026, 2, 1, tzinfo=UTC)


def _review(n: int) -> dict[str, Any]:
    return {
        "review_id": n,
        "content": f"评论 {n}",
        "created_at": (BASE_TIME + timedelta(minutes=n)).isoformat(),
        "user": {"nick": f"u{n}"},
    }


@dataclass
class Vendor:
    """The misbehaving servers' state: items, queued faults, requests seen."""

    items: list[dict[str, Any]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    requests: list[web.Request] = field(default_factory=list)
    feed: bytes = b""
    etag: str | None = None
    base_url: str = ""

    async def misbehave(
        self, request: web.Request
    ) -> tuple[web.StreamResponse | None, str]:
        self.requests.append(request)
        assert request.headers.get("Authorization") == TOKEN
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "500":
            return web.Response(status=500, text="oops"), fault
        if fault == "429":
            return web.Response(status=429, headers={"Retry-After": "7"}), fault
        if fault == "429-long":
            return web.Response(status=429, headers={"Retry-After": "120"}), fault
        if fault == "429-date":
            later = datetime.now(UTC) + timedelta(seconds=5)
            header = format_datetime(later, usegmt=True)
            return web.Response(status=429, headers={"Retry-After": header}), fault
        if fault == "slow":
            await asyncio.sleep(2.0)
        if fault == "garbled":
            garbled = b'{"data": {"items": ['
            return web.Response(body=garbled, content_type="application/json"), fault
        if fault == "html":
            page = "<html>login</html>"
            return web.Response(text=page, content_type="text/html"), fault
        if fault == "huge":
            big = b" " * 5_000
            return web.Response(body=big, content_type="application/json"), fault
        if fault == "huge-chunked":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(10):
                await response.write(b" " * 1_000)
            await response.write_eof()
            return response, fault
        return None, fault

    async def reviews(self, request: web.Request) -> web.StreamResponse:
        answer, fault = await self.misbehave(request)
        if answer is not None:
            return answer
        if self.etag and request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304)
        since = int(request.query.get("since") or 0)
        start = since - 2 if fault == "repeat" else since
        page = [item for item in self.items if item["review_id"] > start][:PAGE_SIZE]
        following = str(page[-1]["review_id"]) if page else str(since)
        if fault == "back":
            following = "1"
        return web.json_response(
            {"data": {"items": page, "next_cursor": following}},
            headers={"ETag": self.etag} if self.etag else None,
        )

    async def pages(self, request: web.Request) -> web.StreamResponse:
        answer, fault = await self.misbehave(request)
        if answer is not None:
            return answer
        number = int(request.query["page"])
        page = self.items[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        return web.json_response({"results": page})

    async def rss(self, request: web.Request) -> web.StreamResponse:
        answer, fault = await self.misbehave(request)
        if answer is not None:
            return answer
        if self.etag and request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304)
        headers = {"ETag": self.etag} if self.etag else {}
        return web.Response(
            body=self.feed, content_type="application/rss+xml", headers=headers
        )


@pytest.fixture
async def vendor() -> AsyncIterator[Vendor]:
    state = Vendor()
    app = web.Application()
    app.router.add_get("/reviews", state.reviews)
    app.router.add_get("/pages", state.pages)
    app.router.add_get("/feed.xml", state.rss)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    await runner.cleanup()


class FakeTime:
    """A monotonic clock that the recorded sleeps move forward."""

    def __init__(self) -> None:
        self.now_s = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now_s += seconds
        await asyncio.sleep(0)


class MemoryCursors:
    def __init__(self) -> None:
        self.saved: dict[str, str] = {}
        self.history: list[str] = []

    async def load(self, source: str) -> str | None:
        return self.saved.get(source)

    async def save(self, source: str, cursor: str) -> None:
        self.saved[source] = cursor
        self.history.append(cursor)


@dataclass
class Run:
    published: list[Post] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    health: SourceHealth = field(default_factory=SourceHealth)
    loop_waits: list[float] = field(default_factory=list)


async def drive(
    name: str,
    fetcher: Fetcher,
    cursors: MemoryCursors,
    *,
    until: int,
    max_rounds: int = 40,
    stop_after_batches: int | None = None,
    run: Run | None = None,
) -> Run:
    """Run the source until `until` posts are out and a poll found nothing new.

    With `stop_after_batches`, stop right after that many published pages, in
    the middle of paging (as a worker that is stopping does).
    """
    run = run or Run()
    stop = asyncio.Event()
    batches = rounds = 0

    async def publish(posts: Sequence[Post]) -> None:
        nonlocal batches
        run.published.extend(posts)
        batches += 1
        if batches == stop_after_batches:
            stop.set()

    async def reject(items: Sequence[Rejected]) -> None:
        run.rejected.extend(items)

    async def sleep(seconds: float) -> None:
        nonlocal rounds
        run.loop_waits.append(seconds)
        rounds += 1
        if len(run.published) >= until or rounds >= max_rounds:
            stop.set()

    await asyncio.wait_for(
        run_source(
            name,
            fetcher,
            cursors,
            publish,
            interval=30.0,
            reject=reject,
            stop=stop,
            health=run.health,
            sleep=sleep,
        ),
        timeout=15,
    )
    return run


def _poll_options(vendor: Vendor, **extra: Any) -> HttpPollOptions:
    values: dict[str, Any] = {
        "name": "reviews",
        "url": vendor.base_url + "/reviews?since={cursor}&key=apikey-in-query",
        "items": "data.items",
        "cursor": "data.next_cursor",
        "map": {
            "id": "review_id",
            "text": "content",
            "published_at": "created_at",
            "author": "user.nick",
        },
        "headers": {"Authorization": TOKEN},
        "timeout_seconds": 0.3,
        "retries": 2,
        "max_body_bytes": 4_096,
        **extra,
    }
    return HttpPollOptions(**values)


def _fast(options: HttpPollOptions, time: FakeTime | None = None) -> HttpPollFetcher:
    """A fetcher whose waits (rate, backoff, Retry-After) take no real time."""
    time = time or FakeTime()
    return HttpPollFetcher(options, clock=time.clock, sleep=time.sleep)


def _ids(posts: Sequence[Post]) -> list[str]:
    return [post.id for post in posts]


async def test_cursor_paging_survives_faults_without_loss_or_duplicates(
    vendor: Vendor, caplog: pytest.LogCaptureFixture
) -> None:
    vendor.items = [_review(n) for n in range(1, 11)]
    # Page 1 after a 500 and a 429 (retried inside the fetch); page 2 after a
    # timeout; then malformed JSON three times (failed polls, counted, not
    # retried inside the fetch); a page that repeats two items; HTML instead of
    # JSON three times.
    vendor.faults = ["500", "429", "", "slow", "", "garbled", "garbled", "garbled"]
    vendor.faults += ["repeat", "html", "html", "html"]
    time = FakeTime()
    fetcher = HttpPollFetcher(_poll_options(vendor), clock=time.clock, sleep=time.sleep)
    cursors = MemoryCursors()
    caplog.set_level(logging.DEBUG)
    try:
        run = await drive("reviews", fetcher, cursors, until=10)
    finally:
        await fetcher.close()

    assert _ids(run.published) == [f"reviews:{n}" for n in range(1, 11)]
    assert run.published[0].author == "u1" and run.published[0].source == "reviews"
    assert run.health.errors == 6  # three polls of malformed JSON, three of HTML
    assert run.health.duplicates == 2  # the repeated page's two old items
    assert 7.0 in time.waits  # Retry-After honoured
    assert decode_state(cursors.saved["reviews"]).vendor == "10"
    # The stored state never leaks the headers or the query's key.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("monitor")]
    assert any("HTTP 429" in line for line in ours)
    for text in [*cursors.history, *ours]:
        assert "s3cr3t" not in text and "apikey-in-query" not in text


async def test_errors_name_the_source_and_url_but_no_secret(vendor: Vendor) -> None:
    vendor.items = [_review(1)]
    fetcher = _fast(_poll_options(vendor))
    try:
        for fault, expected in [
            (["garbled"], "not valid JSON (application/json)"),
            (["html"], "not valid JSON (text/html)"),
            (["huge"], "larger than 4,096 bytes"),
            (["huge-chunked"], "larger than 4,096 bytes"),
        ]:
            vendor.faults = fault
            with pytest.raises(FetchError, match=re.escape(expected)) as caught:
                await fetcher.fetch(None)
            message = str(caught.value)
            assert message.startswith(
                f"source 'reviews': GET {vendor.base_url}/reviews?…: "
            )
            assert "s3cr3t" not in message and "apikey" not in message
        vendor.faults = ["500", "500", "500"]
        with pytest.raises(FetchError, match=r"HTTP 500 \(after 3 attempts\)") as err:
            await fetcher.fetch(None)
        assert err.value.status == 500
        vendor.faults = ["slow", "slow", "slow"]
        with pytest.raises(FetchError, match="no complete answer within 0.3 s"):
            await fetcher.fetch(None)
    finally:
        await fetcher.close()


async def test_last_retry_after_is_carried_by_the_error(vendor: Vendor) -> None:
    time = FakeTime()
    fetcher = HttpPollFetcher(
        _poll_options(vendor, retries=1), clock=time.clock, sleep=time.sleep
    )
    vendor.faults = ["429-date", "429"]
    try:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(None)
    finally:
        await fetcher.close()
    assert caught.value.status == 429 and caught.value.retry_after == 7.0
    assert len(time.waits) == 1 and 3.0 <= time.waits[0] <= 5.0  # the HTTP date


async def test_long_retry_after_ends_the_request_at_once(vendor: Vendor) -> None:
    time = FakeTime()
    fetcher = _fast(_poll_options(vendor), time)
    vendor.faults = ["429-long"]
    try:
        with pytest.raises(
            FetchError, match=r"HTTP 429 \(after 1 attempt; Retry-After 120 s\)"
        ) as err:
            await fetcher.fetch(None)
    finally:
        await fetcher.close()
    assert err.value.retry_after == 120.0  # for the loop to wait between polls
    assert time.waits == [] and len(vendor.requests) == 1


async def test_restart_in_the_middle_of_paging_loses_and_repeats_nothing(
    vendor: Vendor,
) -> None:
    vendor.items = [_review(n) for n in range(1, 11)]
    cursors = MemoryCursors()
    first = _fast(_poll_options(vendor))
    try:
        before = await drive("reviews", first, cursors, until=99, stop_after_batches=2)
    finally:
        await first.close()
    assert _ids(before.published) == [f"reviews:{n}" for n in range(1, 7)]
    assert decode_state(cursors.saved["reviews"]).vendor == "6"  # saved, stopped

    second = _fast(_poll_options(vendor))  # a new worker, same store
    try:
        after = await drive("reviews", second, cursors, until=4)
    finally:
        await second.close()
    assert _ids(after.published) == [f"reviews:{n}" for n in range(7, 11)]
    assert vendor.requests[-1].query["since"] == "10"


async def test_cursor_going_back_in_time_is_not_followed(vendor: Vendor) -> None:
    vendor.items = [_review(n) for n in range(1, 8)]
    vendor.faults = ["", "back"]  # page 2 says the next cursor is 1
    cursors = MemoryCursors()
    fetcher = _fast(_poll_options(vendor))
    try:
        run = await drive("reviews", fetcher, cursors, until=7)
    finally:
        await fetcher.close()
    assert _ids(run.published) == [f"reviews:{n}" for n in range(1, 8)]
    sinces = [int(r.query["since"] or 0) for r in vendor.requests]
    assert sinces == sorted(sinces)  # never asked for an earlier cursor
    assert sinces[:4] == [0, 3, 3, 6]  # page 2 polled again, its items dropped
    assert run.health.duplicates == 3


async def test_page_pagination_returns_to_the_last_page_with_items(
    vendor: Vendor,
) -> None:
    vendor.items = [_review(n) for n in range(1, 8)]  # pages of 3, 3, 1
    options = _poll_options(
        vendor,
        url=vendor.base_url + "/pages?page={page}",
        items="results",
        cursor=None,
        pagination="page",
    )
    cursors = MemoryCursors()
    fetcher = _fast(options)
    try:
        run = await drive("reviews", fetcher, cursors, until=7)
        vendor.items += [_review(8), _review(9)]  # page 3 fills up
        run = await drive("reviews", fetcher, cursors, until=9, run=run)
    finally:
        await fetcher.close()
    assert _ids(run.published) == [f"reviews:{n}" for n in range(1, 10)]
    pages = [int(r.query["page"]) for r in vendor.requests]
    assert pages[:6] == [1, 2, 3, 4, 3, 4]
    assert run.health.duplicates >= 1


async def test_etag_is_sent_again_only_for_the_same_url(vendor: Vendor) -> None:
    vendor.items = [_review(n) for n in range(1, 4)]
    vendor.etag = '"e1"'
    cursors = MemoryCursors()
    fetcher = _fast(_poll_options(vendor))
    try:
        run = await drive("reviews", fetcher, cursors, until=99, max_rounds=2)
    finally:
        await fetcher.close()
    assert _ids(run.published) == [f"reviews:{n}" for n in range(1, 4)]
    asked = [
        (r.query["since"], r.headers.get("If-None-Match")) for r in vendor.requests
    ]
    # since= answered with e1, but the next URL differs: no validator sent;
    # since=3 answered with e1 and stays the URL: the next poll is a 304.
    assert asked == [("", None), ("3", None), ("3", '"e1"')]
    assert run.health.fetched == 3 and run.health.errors == 0


async def test_rate_limit_spaces_requests(vendor: Vendor) -> None:
    vendor.items = [_review(n) for n in range(1, 10)]
    time = FakeTime()
    fetcher = HttpPollFetcher(
        _poll_options(vendor, rate_per_second=2.0), clock=time.clock, sleep=time.sleep
    )
    try:
        await drive("reviews", fetcher, MemoryCursors(), until=9)
    finally:
        await fetcher.close()
    assert len(vendor.requests) == 4  # three pages and the empty one
    assert time.waits == pytest.approx([0.5, 0.5, 0.5])


def _feed(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>Complaints</title>" + "".join(items) + "</channel></rss>"
    ).encode()


ITEM_1 = (
    "<item><guid>c1</guid><title>Leaks</title>"
    "<description><![CDATA[<p>Water <b>everywhere</b></p>]]></description>"
    "<pubDate>Sun, 01 Feb 2026 10:00:00 +0800</pubDate></item>"
)
ITEM_2 = "<item><title>No date</title><link>/c/2</link></item>"
ITEM_3 = "<item><guid>c3</guid><title>Third</title></item>"
ITEM_BAD = "<item><title>Neither id nor link</title></item>"


async def test_rss_feed_served_again_yields_duplicates_and_304(vendor: Vendor) -> None:
    vendor.feed = _feed(ITEM_1, ITEM_2, ITEM_BAD)
    fetched_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    options = RssOptions(
        name="complaints",
        url=vendor.base_url + "/feed.xml",
        headers={"Authorization": TOKEN},
        timeout_seconds=0.3,
        max_body_bytes=4_096,
    )
    cursors = MemoryCursors()
    time = FakeTime()
    fetcher = RssFetcher(
        options, now=lambda: fetched_at, clock=time.clock, sleep=time.sleep
    )
    try:
        run = await drive("complaints", fetcher, cursors, until=2, max_rounds=2)
        # The same feed again, this time without ETag: all duplicates.
        run = await drive(
            "complaints", fetcher, cursors, until=99, max_rounds=1, run=run
        )
        # An ETag now: the next poll answers 304; then a new item arrives.
        vendor.etag = '"v2"'
        run = await drive(
            "complaints", fetcher, cursors, until=99, max_rounds=2, run=run
        )
        vendor.feed = _feed(ITEM_3, ITEM_1, ITEM_2)
        vendor.etag = '"v3"'
        run = await drive(
            "complaints", fetcher, cursors, until=3, max_rounds=1, run=run
        )
    finally:
        await fetcher.close()

    assert len(_ids(run.published)) == 3
    first, second, third = run.published
    assert first.id == "complaints:c1" and first.text == "Leaks Water everywhere"
    assert first.published_at == datetime(2026, 2, 1, 2, 0, tzinfo=UTC)
    assert second.published_at == fetched_at
    assert second.meta == {"published_at_from": "fetch_time"}
    assert second.url == vendor.base_url + "/c/2"
    assert third.id == "complaints:c3"
    # The entry with neither id nor link went to the dead letters once.
    assert [(r.index, r.reason) for r in run.rejected] == [(2, "mapping")]
    # The whole feed twice (no ETag yet, then the first answer with one), then
    # c1 and c2 beside the new c3.
    assert run.health.duplicates == 3 + 3 + 2
    conditional = [r.headers.get("If-None-Match") for r in vendor.requests]
    assert conditional == [None, None, None, '"v2"', '"v2"']
    assert run.health.errors == 0


async def test_rss_faults_are_counted_and_retried(vendor: Vendor) -> None:
    vendor.feed = _feed(ITEM_1)
    time = FakeTime()
    options = RssOptions(
        name="complaints",
        url=vendor.base_url + "/feed.xml",
        headers={"Authorization": TOKEN},
        timeout_seconds=0.3,
        retries=1,
        max_body_bytes=4_096,
    )
    fetcher = RssFetcher(options, clock=time.clock, sleep=time.sleep)
    try:
        vendor.faults = ["html"]
        with pytest.raises(FetchError, match=r"not an RSS or Atom feed.*\(text/html\)"):
            await fetcher.fetch(None)
        vendor.faults = ["huge", "429", "500", "429", ""]
        run = await drive("complaints", fetcher, MemoryCursors(), until=1)
    finally:
        await fetcher.close()
    assert _ids(run.published) == ["complaints:c1"]
    # huge (not retried), 429 + 500 (retries spent), 429 then the feed.
    assert run.health.errors == 2
    assert time.waits.count(7.0) == 2


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/feed?key=k3y", r"connection failed .*after 2 "),
        ("ftp://127.0.0.1/feed.xml", "not a valid http"),
        ("http://[::1/feed.xml", "not a valid http"),
    ],
)
async def test_unreachable_or_invalid_urls_fail_clearly(url: str, reason: str) -> None:
    time = FakeTime()
    options = RssOptions(
        name="feed", url=url.format(port=free_port()), retries=1, timeout_seconds=1
    )
    fetcher = RssFetcher(options, clock=time.clock, sleep=time.sleep)
    try:
        with pytest.raises(FetchError, match=reason) as caught:
            await fetcher.fetch(None)
    finally:
        await fetcher.close()
    assert "k3y" not in str(caught.value)
    assert str(caught.value).startswith("source 'feed': GET ")


async def test_a_failed_publish_sends_the_same_page_again(vendor: Vendor) -> None:
    # The fetcher keeps no state of its own: the ids it remembers come from the
    # cursor it is given, so a page whose publish failed is not a duplicate.
    vendor.items = [_review(n) for n in range(1, 4)]
    cursors = MemoryCursors()
    fetcher = _fast(_poll_options(vendor))
    stop = asyncio.Event()
    published: list[str] = []
    calls = 0

    async def publish(posts: Sequence[Post]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("Kafka down")
        published.extend(_ids(posts))

    async def sleep(seconds: float) -> None:
        if published:
            stop.set()

    try:
        health = await run_source(
            "reviews", fetcher, cursors, publish, interval=30, stop=stop, sleep=sleep
        )
    finally:
        await fetcher.close()
    assert published == ["reviews:1", "reviews:2", "reviews:3"]
    assert health.errors == 1 and health.duplicates == 0
    assert [r.query["since"] for r in vendor.requests][:2] == ["", ""]
