"""``monitor sources run`` as a real process against a paged JSON API (aiohttp):
killed with SIGKILL in the middle of paging and started again, every vendor item
reaches the posts topic (none lost) and, deduplicated by post id, once; the
rejected item is dead-lettered once; ``sources status --json`` shows the counts.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from monitor.local.embedded import free_port
from monitor.sinks.deadletters import read_dead_letters
from monitor.topics import bootstrap_servers
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

PER_PAGE = 5
PAGES = 3  # then an empty page: caught up
BAD_ITEM = 3  # page 0's item 3 has no text: rejected, dead-lettered


def _item(n: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "review_id": f"r{n}",
        "content": f"第{n}条评论，服务不错",
        "created_at": "2026-11-20T08:00:00+00:00",
        "user": {"nick": f"u{n}"},
    }
    if n == BAD_ITEM:
        del item["content"]
    return item


class VendorApi:
    """Serves ``/reviews?since=`` in pages; page 2 hangs until released once."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.page2_asked = asyncio.Event()
        self.release = asyncio.Event()

    async def reviews(self, request: web.Request) -> web.Response:
        since = request.query.get("since", "")
        self.hits.append(since)
        page = int(since[1:]) if since.startswith("p") else 0
        if page == 2 and not self.release.is_set():
            self.page2_asked.set()
            await self.release.wait()  # the poller is killed while it waits
        items = (
            [_item(n) for n in range(page * PER_PAGE, (page + 1) * PER_PAGE)]
            if page < PAGES
            else []
        )
        following = f"p{min(page + 1, PAGES)}"
        return web.json_response({"data": {"items": items, "next_cursor": following}})


async def _serve(api: VendorApi, port: int) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/reviews", api.reviews)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _post_ids(kafka_url: str, topic: str, want: int, timeout: float) -> list[str]:
    """Read the posts topic from the start until ``want`` distinct ids are seen."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers(kafka_url),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    ids: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while len(set(ids)) < want:
                batches = await consumer.getmany(timeout_ms=300)
                for records in batches.values():
                    ids.extend(json.loads(r.value)["id"] for r in records)
        await asyncio.sleep(0.5)  # anything sent twice would be here by now
        for records in (await consumer.getmany(timeout_ms=300)).values():
            ids.extend(json.loads(r.value)["id"] for r in records)
    finally:
        await consumer.stop()
    return ids


async def _monitor(
    env: dict[str, str], log: Path, *args: str
) -> asyncio.subprocess.Process:
    """Start ``monitor ARGS`` with its output (stdout and stderr) in ``log``."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor",
            *args,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )


async def test_sources_run_survives_sigkill_mid_paging(
    stack: Stack, tmp_path: Path
) -> None:
    api = VendorApi()
    port = free_port()
    server = await _serve(api, port)
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"""sources:
  - name: reviews
    kind: http_poll
    url: http://127.0.0.1:{port}/reviews?since={{cursor}}
    interval: 30s
    items: data.items
    cursor: data.next_cursor
    map: {{id: review_id, text: content, published_at: created_at, author: user.nick}}
""",
        encoding="utf-8",
    )
    env = {
        **stack.env,
        "MONITOR_TOPIC_SOURCE_STATE": f"{stack.name}-source-state",
        "MONITOR_TOPIC_SOURCE_LEASES": f"{stack.name}-source-leases",
    }
    kafka_url = stack.addresses.kafka_url
    log = tmp_path / "sources-run.log"
    first = await _monitor(env, log, "sources", "run", str(sources))
    try:
        async with asyncio.timeout(60):
            await api.page2_asked.wait()
    except TimeoutError:
        first.kill()
        await first.wait()
        raise AssertionError(f"page 2 never asked for:\n{_tail(log)}") from None
    # Pages 0 and 1 are in Kafka with their cursor; page 2 is in flight.
    first.send_signal(signal.SIGKILL)
    await first.wait()
    assert api.hits == ["", "p1", "p2"]
    api.release.set()

    second = await _monitor(env, log, "sources", "run", str(sources))
    try:
        ids = await _post_ids(
            kafka_url, stack.posts_topic, PAGES * PER_PAGE - 1, timeout=60
        )
        # Resumed at page 2 (the stored cursor), not from the start.
        assert api.hits[3] == "p2", api.hits
        # Caught up: the empty page is fetched (SIGTERM lets it finish), then
        # the poller sleeps its 30 s interval.
        async with asyncio.timeout(30):
            while "p3" not in api.hits:
                await asyncio.sleep(0.1)
    except BaseException:
        second.kill()
        await second.wait()
        await server.cleanup()
        raise AssertionError(f"sources run log:\n{_tail(log)}") from None
    second.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        await second.wait()
    await server.cleanup()
    assert second.returncode == 0, _tail(log)
    assert "reviews: " in _tail(log)  # its closing summary

    expected = {f"reviews:r{n}" for n in range(PAGES * PER_PAGE) if n != BAD_ITEM}
    assert set(ids) == expected, "no vendor item lost"
    counts = Counter(ids)
    assert len(counts) == len(expected), "exactly once after dedup by post id"

    letters = await read_dead_letters(kafka_url, stack.dead_letters_topic, limit=10)
    assert [(x.stage, x.source) for x in letters] == [("source", "reviews")]
    assert '"review_id":"r3"' in letters[0].payload.replace(" ", "")

    status = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "sources",
        "status",
        "--json",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await status.communicate()
    assert status.returncode == 0, stderr.decode(errors="replace")[-3000:]
    rows = json.loads(stdout)
    (row,) = rows
    assert row["source"] == "reviews" and row["kind"] == "http_poll"
    assert row["accepted"] == len(expected)
    assert sum(row["rejected"].values()) == 1
    assert row["fetched"] >= PAGES + 1 and row["errors"] == 0
    assert row["stale"] is False and row["cursor"]
    assert row["last_success_epoch_s"] is not None
    assert row["cursor_lag_seconds"] == 0.0  # caught up

    table = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "sources",
        "status",
        env={**env, "COLUMNS": "200"},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        printed = (await table.communicate())[0].decode(errors="replace")
    assert table.returncode == 0
    (line,) = [x for x in printed.splitlines() if "reviews" in x]
    assert "http_poll" in line and " ok " in line and "stale" not in line
    assert f" {len(expected)} " in line  # accepted


def _tail(log: Path, chars: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


class _ThreadedApi:
    """The same paged API on a stdlib HTTP server thread (for sync tests)."""

    def __init__(self) -> None:
        import http.server
        import threading
        from urllib.parse import parse_qs, urlparse

        hits = self.hits = []  # type: list[str]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                since = parse_qs(urlparse(self.path).query).get("since", [""])[0]
                hits.append(since)
                page = int(since[1:]) if since.startswith("p") else 0
                items = (
                    [_item(n) for n in range(page * PER_PAGE, (page + 1) * PER_PAGE)]
                    if page < PAGES
                    else []
                )
                body = json.dumps(
                    {
                        "data": {
                            "items": items,
                            "next_cursor": f"p{min(page + 1, PAGES)}",
                        }
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_worker_polls_its_leased_sources_and_writes_cursors_on_stop(
    stack: Stack, tmp_path: Path
) -> None:
    from monitor.sources.cursors import KafkaCursorStore
    from monitor.topics import ensure_topics
    from tests.support import wait_until

    api = _ThreadedApi()
    sources = tmp_path / "sources.yaml"
    entries = "".join(
        f"""  - name: {name}
    kind: http_poll
    url: http://127.0.0.1:{api.port}/reviews?since={{cursor}}
    interval: 1s
    items: data.items
    cursor: data.next_cursor
    map: {{id: review_id, text: content, published_at: created_at}}
"""
        for name in ("alpha", "reviews")
    )
    sources.write_text("sources:\n" + entries, encoding="utf-8")
    state_topic = f"{stack.name}-source-state"
    leases_topic = f"{stack.name}-source-leases"
    # A lease topic made earlier with fewer partitions than MONITOR_SOURCE_SLOTS:
    # "reviews" (slot 1 of 2) must still be polled.
    asyncio.run(ensure_topics(stack.addresses.kafka_url, {leases_topic: 1}))
    worker = stack.worker(
        MONITOR_SOURCES=str(sources),
        MONITOR_TOPIC_SOURCE_STATE=state_topic,
        MONITOR_TOPIC_SOURCE_LEASES=leases_topic,
        MONITOR_SOURCE_SLOTS="2",
    ).start()
    expected = PAGES * PER_PAGE - 1
    try:
        wait_until(
            lambda: (
                worker.metric_sum("monitor_source_posts_accepted_total") == 2 * expected
                and api.hits.count("p3") >= 4
            ),
            timeout=60,
            what="the worker's pollers to read every page",
        )
        assert (
            worker.metric_sum("monitor_source_interval_seconds", source="reviews")
            == 1.0
        )
        assert (
            worker.metric_sum("monitor_source_posts_rejected_total", source="reviews")
            == 1.0
        )
        assert worker.metric_sum("monitor_source_last_success_timestamp_seconds") > 0
        wait_until(
            lambda: stack.indexed_count() == 2 * expected,
            timeout=30,
            what="the polled posts in Elasticsearch",
        )
    finally:
        code = worker.stop()
        api.close()
    assert code == 0, worker.log_tail()

    store = KafkaCursorStore(stack.addresses.kafka_url, state_topic)
    states = asyncio.run(store.load_all())
    assert states["reviews"].accepted == states["alpha"].accepted == expected
    assert states["reviews"].cursor is not None
    last_success = states["reviews"].last_success_epoch_s
    assert last_success is not None
    assert states["reviews"].written_at_epoch_s >= last_success
