"""``POST /ingest/{source}`` on a real aiohttp server into noida-db's Kafka."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from monitor.local.embedded import EmbeddedServers, free_port
from monitor.metrics import SourceMetrics
from monitor.sources.limits import RecentIds, TokenBucket
from monitor.topics import bootstrap_servers
from monitor.web.ingest import (
    KafkaPublish,
    WebhookEndpoint,
    ingest_app,
    sign,
)
from tests.support import make_posts

pytestmark = pytest.mark.integration

SECRET = b"crm-secret-for-tests"
LIMIT = 4096


@dataclass
class Server:
    """An ingest server on a free port, publishing to its own topic."""

    base: str
    port: int
    topic: str
    kafka_url: str
    registry: CollectorRegistry

    async def post(
        self,
        source: str,
        body: bytes,
        *,
        secret: bytes = SECRET,
        timestamp: int | None = None,
        content_type: str = "application/json",
        signed_body: bytes | None = None,
    ) -> tuple[int, Any, Any]:
        stamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Monitor-Timestamp": str(stamp),
            "X-Monitor-Signature": sign(
                secret, stamp, body if signed_body is None else signed_body
            ),
        }
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.base}/ingest/{source}", data=body, headers=headers
            ) as response:
                return response.status, await response.json(), response.headers

    async def read_back(self, count: int) -> list[Any]:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=bootstrap_servers(self.kafka_url),
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        records: list[Any] = []
        try:
            async with asyncio.timeout(10):
                while len(records) < count:
                    for batch in (await consumer.getmany(timeout_ms=300)).values():
                        records.extend(batch)
            # Nothing more than expected arrives.
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
        finally:
            await consumer.stop()
        return records

    def counter(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


async def _serve(kafka_url: str, *, ack_timeout_s: float = 5.0) -> Any:
    registry = CollectorRegistry()
    topic = f"ingest-{uuid.uuid4().hex[:8]}"
    publish = KafkaPublish(kafka_url, topic)
    endpoints = {
        "crm-push": WebhookEndpoint("crm-push", SECRET, LIMIT),
        "slow": WebhookEndpoint("slow", SECRET, LIMIT, TokenBucket(1.0, 3)),
        "tiny-memory": WebhookEndpoint(
            "tiny-memory", SECRET, LIMIT, None, RecentIds(2)
        ),
    }
    root = web.Application()
    root.add_subapp(
        "/ingest",
        ingest_app(
            endpoints,
            publish,
            metrics=SourceMetrics.create(registry),
            ack_timeout_s=ack_timeout_s,
        ),
    )
    runner = web.AppRunner(root)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server = Server(f"http://127.0.0.1:{port}", port, topic, kafka_url, registry)
    return server, runner, publish


@pytest.fixture
async def server(noida: EmbeddedServers) -> AsyncIterator[Server]:
    assert noida.addresses is not None
    served, runner, publish = await _serve(noida.addresses.kafka_url)
    try:
        yield served
    finally:
        await runner.cleanup()
        await publish.close()


def _body(posts: Any) -> bytes:
    return json.dumps(posts, ensure_ascii=False).encode("utf-8")


async def test_one_post_an_array_and_json_lines_reach_kafka(server: Server) -> None:
    posts = make_posts(6, prefix="v")
    del posts[0]["source"]
    lines = b"\n".join(_body(p) for p in posts[3:]) + b"\n"

    single = await server.post("crm-push", _body(posts[0]))
    array = await server.post("crm-push", _body(posts[1:3]))
    jsonl = await server.post("crm-push", lines, content_type="application/x-ndjson")

    assert single[:2] == (202, {"accepted": 1, "rejected": [], "duplicates": 0})
    assert array[:2] == (202, {"accepted": 2, "rejected": [], "duplicates": 0})
    assert jsonl[:2] == (202, {"accepted": 3, "rejected": [], "duplicates": 0})
    records = await server.read_back(6)
    sent = [json.loads(r.value) for r in records]
    assert [r.key.decode() for r in records] == [f"crm-push:v-{n}" for n in range(6)]
    assert [p["id"] for p in sent] == [f"crm-push:v-{n}" for n in range(6)]
    assert sent[0]["source"] == "crm-push"  # defaulted to the source's name
    assert sent[1]["source"] == posts[1]["source"]  # kept when given
    assert server.counter("monitor_source_posts_accepted_total", source="crm-push") == 6


async def test_bad_signatures_and_stale_timestamps_are_refused(
    server: Server,
) -> None:
    body = _body(make_posts(1, prefix="s"))
    now = int(time.time())

    answers = [
        await server.post("crm-push", body, secret=b"wrong-secret"),
        await server.post("crm-push", body, timestamp=now - 301),
        await server.post("crm-push", body, timestamp=now + 301),
        await server.post("crm-push", body, signed_body=body.replace(b"s-0", b"s-9")),
    ]

    assert [status for status, _, _ in answers] == [401, 401, 401, 401]
    reasons = [answer["error"]["message"] for _, answer, _ in answers]
    assert reasons[0] == reasons[3] == "signature does not match"
    assert "300 s" in reasons[1] and "300 s" in reasons[2]
    assert SECRET.decode() not in json.dumps(answers[0][1])
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{server.base}/ingest/crm-push",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as unsigned:
            assert unsigned.status == 401
    assert (
        server.counter(
            "monitor_source_requests_refused_total", source="crm-push", status="401"
        )
        == 5
    )


async def _raw_exchange(port: int, head: bytes, body: bytes) -> tuple[bytes, float]:
    """Send a request head and part of a body, never its end; read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        started = time.monotonic()
        async with asyncio.timeout(5):
            answer = await reader.readuntil(b"\r\n\r\n")
        return answer, time.monotonic() - started
    finally:
        writer.close()


async def test_oversize_bodies_are_refused_before_being_read(server: Server) -> None:
    stamp = int(time.time())
    common = (
        "POST /ingest/crm-push HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\n"
        f"X-Monitor-Timestamp: {stamp}\r\n"
        f"X-Monitor-Signature: {sign(SECRET, stamp, b'')}\r\n"
    )
    declared = (common + "Content-Length: 100000000\r\n\r\n").encode()
    chunk = b"x" * (LIMIT + 1)
    chunked = (common + "Transfer-Encoding: chunked\r\n\r\n").encode()
    first_chunk = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"

    # 100 MB announced, none sent: answered at once.
    answer, _ = await _raw_exchange(server.port, declared, b"")
    assert answer.startswith(b"HTTP/1.1 413"), answer
    # Chunked, one chunk past the limit and no end: answered without the rest.
    answer, _ = await _raw_exchange(server.port, chunked, first_chunk)
    assert answer.startswith(b"HTTP/1.1 413"), answer


async def test_wrong_type_unknown_source_and_nothing_valid(server: Server) -> None:
    post = make_posts(1, prefix="t")[0]

    wrong_type = await server.post("crm-push", _body(post), content_type="text/plain")
    unknown = await server.post("nobody", _body(post))
    invalid = await server.post(
        "crm-push",
        _body([{"id": "x", "text": "无日期"}, 42, {**post, "published_at": "soon"}]),
    )
    not_json = await server.post("crm-push", b"{not json")

    assert wrong_type[0] == 415
    assert unknown[:2] == (
        404,
        {"error": {"status": 404, "message": "no webhook source 'nobody'"}},
    )
    assert invalid[0] == 422
    assert invalid[1]["accepted"] == 0
    assert [r["index"] for r in invalid[1]["rejected"]] == [0, 1, 2]
    assert all(r["reason"] for r in invalid[1]["rejected"])
    assert "published_at" in invalid[1]["rejected"][0]["reason"]
    assert not_json[0] == 422 and "JSON" in not_json[1]["error"]["message"]


async def test_a_valid_post_is_accepted_next_to_rejected_ones(server: Server) -> None:
    post = make_posts(1, prefix="m")[0]

    status, answer, _ = await server.post("crm-push", _body([{"text": "?"}, post]))

    assert status == 202
    assert answer["accepted"] == 1
    assert [r["index"] for r in answer["rejected"]] == [0]
    assert (
        server.counter(
            "monitor_source_posts_rejected_total", source="crm-push", reason="invalid"
        )
        == 1
    )


async def test_over_the_rate_is_429_with_retry_after(server: Server) -> None:
    posts = make_posts(5, prefix="r")

    first = await server.post("slow", _body(posts[:3]))  # the burst of 3
    second = await server.post("slow", _body(posts[3:5]))

    assert first[0] == 202
    assert second[0] == 429
    assert 1 <= int(second[2]["Retry-After"]) <= 2


async def test_exact_duplicates_are_dropped_and_counted(server: Server) -> None:
    posts = make_posts(3, prefix="d")

    first = await server.post("crm-push", _body(posts[:2]))
    again = await server.post("crm-push", _body([posts[1], posts[2], posts[2]]))

    assert first[1] == {"accepted": 2, "rejected": [], "duplicates": 0}
    assert again[:2] == (202, {"accepted": 1, "rejected": [], "duplicates": 2})
    assert len(await server.read_back(3)) == 3
    assert (
        server.counter("monitor_source_posts_duplicate_total", source="crm-push") == 2
    )


async def test_the_recent_ids_are_bounded(server: Server) -> None:
    posts = make_posts(3, prefix="b")
    for post in posts:
        assert (await server.post("tiny-memory", _body(post)))[1]["accepted"] == 1

    # b-0 has been forgotten (2 ids kept); b-2 is still remembered.
    again = await server.post("tiny-memory", _body([posts[0], posts[2]]))

    assert again[1] == {"accepted": 1, "rejected": [], "duplicates": 1}


async def test_kafka_down_is_503_and_nothing_claimed_accepted() -> None:
    closed = f"kafka://127.0.0.1:{free_port()}"
    served, runner, publish = await _serve(closed, ack_timeout_s=1.5)
    try:
        started = time.monotonic()
        status, answer, headers = await served.post(
            "crm-push", _body(make_posts(2, prefix="k"))
        )
        took = time.monotonic() - started
    finally:
        await runner.cleanup()
        await publish.close()

    assert status == 503
    assert (
        "accepted" not in answer
        and "nothing was accepted" in answer["error"]["message"]
    )
    assert headers["Retry-After"]
    assert took < 4
    assert served.counter("monitor_source_posts_accepted_total", source="crm-push") == 0
