"""HTTP polling: what a poller costs on top of publishing the same posts.

Starts its own noida-db and, in a child process, a JSON API serving
``--posts`` items in pages of ``--page`` behind a ``since={cursor}``
cursor. One ``http_poll`` source runs through :class:`SourcePollers` (the
worker's and ``monitor sources run``'s path: fetch, map, publish, wait for
Kafka's acknowledgement, write the cursor and health to the state topic)
until every item is acknowledged. The defaults make that one poll of ten
pages, the most one poll fetches before it waits an interval, so the figure
is the paging speed, not the interval. The baseline, in the same process, is
:class:`PostPublisher` alone sending the same posts page by page (publish +
flush per page): the Kafka round trips a poller cannot avoid.

Reported per run mode (median of ``--runs``): posts/s, and this process's
CPU per post (the API server's CPU is in its own process and not counted).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.local.embedded import EmbeddedServers, free_port
from monitor.records import Post
from monitor.settings import Settings
from monitor.sources.config import load_sources
from monitor.sources.publisher import PostPublisher
from monitor.sources.runner import SourcePollers

TEXT = "商场空调坏了，热得不行，客服电话一直占线，第{n}次投诉了"


def pages(posts: int, page: int) -> list[bytes]:
    """The API's pages: page i answers ``since=i`` and points to ``i + 1``."""
    out = []
    for start in range(0, posts, page):
        items = [
            {
                "review_id": f"r{n}",
                "content": TEXT.format(n=n),
                "created_at": "2026-11-20T09:00:00+08:00",
                "user": {"nick": f"user{n % 300}"},
            }
            for n in range(start, min(posts, start + page))
        ]
        index = start // page
        out.append(
            json.dumps(
                {"data": {"items": items, "next_cursor": str(index + 1)}},
                ensure_ascii=False,
            ).encode()
        )
    return out


def serve(port: int, posts: int, page: int) -> None:
    """Run the JSON API (child process)."""
    from aiohttp import web

    bodies = pages(posts, page)
    empty = json.dumps({"data": {"items": [], "next_cursor": None}}).encode()

    async def reviews(request: web.Request) -> web.Response:
        since = request.query.get("since") or "0"
        index = int(since) if since.isdigit() else 0
        body = bodies[index] if index < len(bodies) else empty
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/reviews", reviews)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Return once the API accepts connections (a failed first fetch backs off)."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def settings_for(kafka_url: str, es_url: str, tmp: Path, sources: Path) -> Settings:
    name = "b" + uuid.uuid4().hex[:8]
    return Settings(
        kafka_url=kafka_url,
        es_url=es_url,
        app_id=name,
        data_dir=tmp / name,
        topic_posts=f"{name}-posts",
        topic_dead_letters=f"{name}-dead-letters",
        topic_source_state=f"{name}-source-state",
        topic_source_leases=f"{name}-source-leases",
        sources=sources,
    )


async def poll_run(settings: Settings, posts: int) -> tuple[float, float]:
    assert settings.sources is not None
    pollers = SourcePollers(settings, load_sources(settings.sources), leases=False)
    # The clock starts once the topics exist and the poller's task is
    # created (start-up is a one-off cost, not the polling's).
    await pollers.start()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        while True:
            health = pollers.runner.health("reviews")
            if health is not None and health.accepted >= posts:
                break
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - wall
        used = time.process_time() - cpu
    finally:
        await pollers.stop()
    return posts / elapsed, used / posts * 1e6


async def publisher_run(
    settings: Settings, posts: int, page: int
) -> tuple[float, float]:
    assert settings.kafka_url is not None
    publisher = PostPublisher(settings.kafka_url, settings.topic_posts, linger_ms=0)
    at = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    batch = [
        Post(
            id=f"reviews:r{n}",
            text=TEXT.format(n=n),
            published_at=at,
            source="reviews",
            author=f"user{n % 300}",
        )
        for n in range(posts)
    ]
    cpu, wall = time.process_time(), time.perf_counter()
    await publisher.start()
    try:
        for start in range(0, posts, page):
            for post in batch[start : start + page]:
                await publisher.publish(post)
            await publisher.flush()
        elapsed = time.perf_counter() - wall
        used = time.process_time() - cpu
    finally:
        await publisher.close()
    return posts / elapsed, used / posts * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--page", type=int, default=100, help="items per page")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(port, args.posts, args.page), daemon=True
    )
    server.start()
    wait_for_port(port)
    poll: list[tuple[float, float]] = []
    base: list[tuple[float, float]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            sources = tmp / "sources.yaml"
            sources.write_text(
                "sources:\n"
                "  - name: reviews\n"
                "    kind: http_poll\n"
                f"    url: http://127.0.0.1:{port}/reviews?since={{cursor}}\n"
                "    interval: 1s\n"
                "    items: data.items\n"
                "    cursor: data.next_cursor\n"
                "    rate: {per_second: 10000, burst: 100}\n"
                "    map: {id: review_id, text: content, published_at: created_at,"
                " author: user.nick}\n"
            )
            with EmbeddedServers(tmp / "noida", attach=False) as addresses:
                for _ in range(args.runs):
                    settings = settings_for(
                        addresses.kafka_url, addresses.es_url, tmp, sources
                    )
                    poll.append(asyncio.run(poll_run(settings, args.posts)))
                    base.append(
                        asyncio.run(publisher_run(settings, args.posts, args.page))
                    )
    finally:
        server.terminate()
        server.join(10)
    poll_rate = statistics.median(r for r, _ in poll)
    base_rate = statistics.median(r for r, _ in base)
    poll_cpu = statistics.median(c for _, c in poll)
    base_cpu = statistics.median(c for _, c in base)
    result: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "posts_per_run": args.posts,
        "page": args.page,
        "runs": args.runs,
        "poll_posts_per_s": round(poll_rate, 1),
        "publisher_posts_per_s": round(base_rate, 1),
        "ratio": round(poll_rate / base_rate, 3),
        "poll_cpu_us_per_post": round(poll_cpu, 1),
        "publisher_cpu_us_per_post": round(base_cpu, 1),
        "overhead_cpu_us_per_post": round(poll_cpu - base_cpu, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
