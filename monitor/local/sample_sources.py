"""Local stand-ins for the vendors a sources file polls, serving the sample feed.

:class:`SampleSources` runs two real HTTP servers (aiohttp) in a background
thread, on the ports ``examples/sources.yaml`` names (8081 and 8082) or on
free ones:

- a review site's JSON API, ``GET /reviews?since=<cursor>``: the feed's
  ``dianping`` posts as review items, 100 a page, oldest first,
  ``{"data": {"items": [...], "next_cursor": "<n>"}}``; the last page keeps
  the cursor where it is, as such APIs do;
- a complaint board's RSS 2.0 feed, ``GET /feed.xml``: the newest 100 of the
  feed's ``heimao`` posts, newest first, with an ``ETag`` (a conditional
  request answers 304).

With ``bearer`` set the API refuses a request without that
``Authorization: Bearer`` token (401), as a real vendor would.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import threading
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from monitor.local.embedded import free_port

#: Items per page of the JSON API.
PAGE_SIZE = 100
#: Entries the RSS feed shows (the newest).
FEED_ENTRIES = 100


def review_items(posts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the feed's ``dianping`` posts as a review site's items, oldest first."""
    reviews = [p for p in posts if p.get("source") == "dianping"]
    reviews.sort(key=lambda p: str(p.get("published_at")))
    return [
        {
            "review_id": p["id"],
            "content": p["text"],
            "created_at": p["published_at"],
            "user": {"nick": p.get("author") or "匿名"},
            "url": p.get("url"),
        }
        for p in reviews
    ]


def review_page(items: Sequence[dict[str, Any]], since: str | None) -> dict[str, Any]:
    """Return the JSON API's answer to ``since`` (an offset; empty or bad: 0)."""
    start = int(since) if since and since.isdigit() else 0
    start = min(start, len(items))
    page = list(items[start : start + PAGE_SIZE])
    return {"data": {"items": page, "next_cursor": str(start + len(page))}}


def rss_feed(posts: Sequence[dict[str, Any]], title: str = "投诉平台") -> bytes:
    """Return an RSS 2.0 document of the newest ``heimao`` posts (text escaped)."""
    complaints = [p for p in posts if p.get("source") == "heimao"]
    complaints.sort(key=lambda p: str(p.get("published_at")), reverse=True)
    entries = []
    for post in complaints[:FEED_ENTRIES]:
        when = datetime.fromisoformat(str(post["published_at"]))
        text = html.escape(str(post["text"]))
        entries.append(
            "<item>"
            f'<guid isPermaLink="false">{html.escape(str(post["id"]))}</guid>'
            f"<title>{text[:40]}</title>"
            f"<description>&lt;p&gt;{text}&lt;/p&gt;</description>"
            f"<link>{html.escape(str(post.get('url') or ''))}</link>"
            f"<author>{html.escape(str(post.get('author') or ''))}</author>"
            f"<pubDate>{format_datetime(when)}</pubDate>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<rss version="2.0"><channel><title>{html.escape(title)}</title>'
        "<link>http://127.0.0.1/</link><description>sample complaints</description>"
        + "".join(entries)
        + "</channel></rss>"
    ).encode("utf-8")


def read_feed(path: Path) -> list[dict[str, Any]]:
    """Return the posts of a JSON Lines feed (blank lines skipped)."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


class SampleSources:
    """The sample review API and complaint feed; use as a context manager.

    Args:
        feed: A JSON Lines feed in the post format (the sample feed).
        api_port: Port of the JSON API (0: a free one).
        rss_port: Port of the RSS feed (0: a free one).
        bearer: Token the API requires, if any.

    """

    def __init__(
        self,
        feed: Path,
        *,
        api_port: int = 0,
        rss_port: int = 0,
        bearer: str | None = None,
    ) -> None:
        posts = read_feed(feed)
        self.items = review_items(posts)
        self.rss = rss_feed(posts)
        self.etag = '"' + hashlib.sha256(self.rss).hexdigest()[:16] + '"'
        self.api_port = api_port or free_port()
        self.rss_port = rss_port or free_port()
        self.bearer = bearer
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def api_url(self) -> str:
        """The reviews URL template, as a sources file writes it."""
        return f"http://127.0.0.1:{self.api_port}/reviews?since={{cursor}}"

    @property
    def rss_url(self) -> str:
        """The feed's URL."""
        return f"http://127.0.0.1:{self.rss_port}/feed.xml"

    def start(self, timeout: float = 10.0) -> SampleSources:
        """Start serving in a background thread; raise if the ports are taken."""
        self._thread = threading.Thread(
            target=self._run, name="sample-sources", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the sample sources did not start")
        if self._error is not None:
            raise RuntimeError(f"the sample sources did not start: {self._error}")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> SampleSources:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        api = web.Application()
        api.router.add_get("/reviews", self._reviews)
        feed = web.Application()
        feed.router.add_get("/feed.xml", self._feed)
        runners = [web.AppRunner(api), web.AppRunner(feed)]
        try:
            for runner, port in zip(
                runners, (self.api_port, self.rss_port), strict=True
            ):
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", port).start()
            self._ready.set()
            await self._stop.wait()
        finally:
            for runner in runners:
                await runner.cleanup()

    async def _reviews(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.bearer is not None and (
            request.headers.get("Authorization") != f"Bearer {self.bearer}"
        ):
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response(
            review_page(self.items, request.query.get("since")),
            dumps=lambda data: json.dumps(data, ensure_ascii=False),
        )

    async def _feed(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers={"ETag": self.etag})
        return web.Response(
            body=self.rss,
            content_type="application/rss+xml",
            charset="utf-8",
            headers={"ETag": self.etag},
        )
