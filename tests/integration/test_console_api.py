# ruff: noqa: F811 - the ticket API tests' fixtures, imported below, are used
# by name as arguments.
"""What the console reads: who am I, the live stream, the board, reviews.

On real servers: noida-db's Elasticsearch protocol holds the tickets and the
counts, its Kafka protocol carries the ``tickets`` topic between two web
servers (a change made through one shows on the other's stream).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from monitor.local.embedded import EmbeddedServers
from monitor.services.ticketing import TicketService
from monitor.sinks.elasticsearch.templates import count_index_template
from monitor.topics import bootstrap_servers, ensure_topics
from monitor.web.api import api_app
from monitor.web.auth import Authenticator
from monitor.web.feed import TicketEventFollower, TicketEventPublisher, TicketFeed
from tests.integration.test_tickets_api import (
    RESPONDER,
    TOKENS,
    VIEWER,
    Api,
    error,
    serve,
    trigger,
)

pytestmark = pytest.mark.integration

# The ticket API tests' fixtures: a service on a fresh index prefix, its API,
# and one open ticket.
from tests.integration.test_tickets_api import (  # noqa: E402,F401
    api,
    rules,
    service,
    ticket_id,
)


async def test_me_names_the_caller_and_role(api: Api) -> None:
    assert await api.call("GET", "/me", VIEWER) == (
        200,
        {"name": "kibana", "role": "viewer"},
    )
    status, body = await api.call("GET", "/me", "wrong")
    assert error(401, body)[0] == status


async def test_closing_a_p1_or_p2_needs_a_review_which_the_reviews_list_shows(
    api: Api, service: TicketService, ticket_id: str
) -> None:
    path = f"/tickets/{ticket_id}/actions"
    _, body = await api.call("GET", f"/tickets/{ticket_id}", VIEWER)
    assert body["ticket"]["review"] is None
    while (priority := body["ticket"]["priority"]) not in ("P1", "P2"):
        _, body = await api.call("POST", path, RESPONDER, body={"action": "escalate"})
    await api.call("POST", path, RESPONDER, body={"action": "resolve"})
    status, body = await api.call("POST", path, RESPONDER, body={"action": "close"})
    assert status == 422
    assert f"closing a {priority} ticket needs a review" in error(422, body)[1]
    status, body = await api.call(
        "POST", path, RESPONDER, body={"action": "close", "root_cause": "滤网"}
    )
    assert status == 422 and "resolution" in error(422, body)[1]
    status, body = await api.call(
        "POST",
        path,
        RESPONDER,
        body={"action": "close", "note": "x", "bogus": 1},
    )
    assert status == 422 and "bogus" in error(422, body)[1]
    review = {"root_cause": "滤网堵塞", "resolution": "更换滤网", "lessons": "每月巡检"}
    status, body = await api.call(
        "POST", path, RESPONDER, body={"action": "close", **review}
    )
    assert status == 200, body
    assert body["ticket"]["status"] == "closed"
    assert body["ticket"]["review"] == {
        **review,
        "author": "王工",
        "at": body["ticket"]["closed_at"],
    }
    assert body["event"]["details"] == review
    status, body = await api.call("GET", "/reviews", VIEWER)
    assert status == 200
    assert body["reviews"] == [
        {
            "ticket_id": ticket_id,
            "topic": "空调异味",
            "priority": priority,
            "closed_at": body["reviews"][0]["closed_at"],
            "closed_by": "王工",
            **review,
        }
    ]
    # Reopened, the review stays (the next close replaces it).
    status, body = await api.call(
        "POST", path, RESPONDER, body={"action": "reopen", "note": "又来了"}
    )
    assert status == 200 and body["ticket"]["review"]["root_cause"] == "滤网堵塞"


async def test_the_board_counts_open_incidents_and_topic_windows(
    api: Api, service: TicketService, ticket_id: str
) -> None:
    store = service.store
    now = service.now()
    # The worker puts the counts template before its first write; so do we.
    template = count_index_template(store.prefix)
    await store.client.indices.put_index_template(
        name=f"{store.prefix}-counts", **template
    )
    for minutes, posts, negative in ((-40, 9, 2), (-35, 12, 7), (-30, 4, 4)):
        start = now + timedelta(minutes=minutes)
        await store.client.index(
            index=f"{store.prefix}-counts-2026.11.20",
            id=f"topic:空调异味@{start.timestamp()}",
            document={
                "series": "topic:空调异味",
                "kind": "topic",
                "key": "空调异味",
                "window_start": start.isoformat(),
                "window_seconds": 300,
                "posts": posts,
                "negative": negative,
            },
            refresh=True,
        )
    old = now - timedelta(hours=7)
    await store.client.index(
        index=f"{store.prefix}-counts-2026.11.20",
        id="old",
        document={
            "series": "topic:空调异味",
            "kind": "topic",
            "key": "空调异味",
            "window_start": old.isoformat(),
            "window_seconds": 300,
            "posts": 99,
            "negative": 99,
        },
        refresh=True,
    )
    status, body = await api.call("GET", "/board", VIEWER, params={"hours": "6"})
    assert status == 200, body
    assert sum(body["open_by_priority"].values()) == 1
    assert body["bucket_seconds"] == 300 and body["hours"] == 6
    (topic,) = body["topics"]
    assert topic["topic"] == "空调异味"
    assert [(b["posts"], b["negative"]) for b in topic["buckets"]] == [
        (9, 2),
        (12, 7),
        (4, 4),
    ]
    status, body = await api.call("GET", "/board", VIEWER, params={"hours": "99"})
    assert status == 422 and "hours" in error(422, body)[1]


class Stream:
    """Reads ``GET /stream`` as a console does (fetch with the bearer header)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next_event(self, timeout: float = 10.0) -> tuple[str, Any]:
        name, data = "", ""
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.response.content.readline()).decode()
                if not line:
                    raise EOFError("stream ended")
                line = line.rstrip("\n")
                if line.startswith(":"):
                    continue
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and name:
                    return name, json.loads(data)


@pytest.fixture
async def two_servers(
    noida: EmbeddedServers, service: TicketService
) -> AsyncIterator[tuple[Api, Api]]:
    """Two web servers on one store; changes travel over a real ``tickets`` topic."""
    assert noida.addresses is not None
    kafka = bootstrap_servers(noida.addresses.kafka_url)
    topic = "tickets-" + uuid.uuid4().hex[:8]
    await ensure_topics(noida.addresses.kafka_url, {topic: 2})
    producer = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=0)
    await producer.start()

    async def send(key: bytes, value: bytes) -> None:
        partition = sum(key) % 2
        await producer.send_and_wait(topic, value, key=key, partition=partition)

    publisher = TicketEventPublisher(send)
    publisher.start()
    service.on_event = publisher.offer
    auth = Authenticator.from_spec(TOKENS)
    feeds = [TicketFeed(), TicketFeed()]
    followers = [TicketEventFollower(feed, kafka, topic) for feed in feeds]
    runners = []
    async with aiohttp.ClientSession() as session:
        apis = []
        for feed, follower in zip(feeds, followers, strict=True):
            follower.start()
            runner, base = await serve(api_app(service, auth, feed))
            runners.append(runner)
            apis.append(Api(base, session))
        for follower in followers:
            await asyncio.wait_for(follower.ready.wait(), 30)
        yield apis[0], apis[1]
    for follower in followers:
        await follower.stop()
    await publisher.stop()
    await producer.stop()
    for runner in runners:
        await runner.cleanup()


async def test_a_change_through_one_server_streams_from_the_other(
    two_servers: tuple[Api, Api], service: TicketService
) -> None:
    first, second = two_servers
    decision = await service.handle_trigger(trigger())
    assert decision.ticket is not None
    ticket_id = decision.ticket.ticket_id
    headers = {"Authorization": f"Bearer {VIEWER}"}
    async with second.session.get(second.base + "/stream", headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        stream = Stream(resp)
        assert (await stream.next_event())[0] == "hello"
        delays = []
        for n in range(20):
            started = time.perf_counter()
            status, _ = await first.call(
                "POST",
                f"/tickets/{ticket_id}/actions",
                RESPONDER,
                body={"action": "comment", "note": f"第 {n} 次"},
            )
            assert status == 200
            while True:
                name, data = await stream.next_event()
                if data["event"]["note"] == f"第 {n} 次":
                    break
            delays.append(time.perf_counter() - started)
            assert name == "ticket" and data["ticket"]["ticket_id"] == ticket_id
            assert data["event"]["actor"] == "王工"
            assert "outbox" not in data["ticket"]
        # Each change shows within seconds (generous: a loaded CI machine).
        assert statistics.median(delays) < 2.0, delays


async def test_the_stream_says_hello_only_while_the_topic_is_followed(
    service: TicketService,
) -> None:
    feed = TicketFeed()
    # A follower that has not reached the topic yet (nothing listens there).
    TicketEventFollower(feed, "127.0.0.1:9", "tickets")
    runner, base = await serve(api_app(service, Authenticator.from_spec(TOKENS), feed))
    headers = {"Authorization": f"Bearer {VIEWER}"}
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/stream", headers=headers) as resp:
                assert resp.status == 200
                stream = Stream(resp)
                with pytest.raises(TimeoutError):  # not live: no hello yet
                    await stream.next_event(timeout=0.5)
                feed.following.set()  # what the follower does once it reads
                assert (await stream.next_event())[0] == "hello"
                feed.interrupt()  # the follower lost the topic
                with pytest.raises(EOFError):
                    await stream.next_event()
    finally:
        await runner.cleanup()


async def test_the_stream_needs_a_token(two_servers: tuple[Api, Api]) -> None:
    first, _ = two_servers
    async with first.session.get(first.base + "/stream") as resp:
        assert resp.status == 401


async def test_cli_actions_keep_the_api_rules_and_errors(
    noida: EmbeddedServers, service: TicketService, ticket_id: str, tmp_path: Any
) -> None:
    from tests.integration.test_tickets_api import RULES, clean_env, monitor

    assert noida.addresses is not None
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(RULES, encoding="utf-8")
    env = clean_env(
        MONITOR_KAFKA_URL=noida.addresses.kafka_url,
        MONITOR_ES_URL=noida.addresses.es_url,
        MONITOR_INDEX_PREFIX=service.store.prefix,
        MONITOR_RULES=str(rules_path),
    )

    def act(*args: str) -> tuple[int, Any]:
        done = monitor("tickets", *args, "--json", "--as", "小李", env=env)
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)

    code, body = act("ack", ticket_id, "-m", "收到")
    assert code == 0 and body["ticket"]["status"] == "acknowledged"
    assert (body["event"]["actor"], body["event"]["note"]) == ("小李", "收到")
    # Refusals read as the API's, with its status.
    assert act("ack", ticket_id) == (
        1,
        {
            "error": {
                "status": 409,
                "message": f"cannot acknowledge ticket {ticket_id} in status "
                "'acknowledged': acknowledge is only allowed from open",
            }
        },
    )
    assert act("transfer", ticket_id) == (
        2,
        {
            "error": {
                "status": 422,
                "message": "owner or team: transfer needs one or both",
            }
        },
    )
    assert act("ack", "T-missing-1")[1]["error"] == {
        "status": 404,
        "message": "no ticket 'T-missing-1'",
    }
    code, body = act("assign", ticket_id, "李工")
    assert code == 0 and body["ticket"]["owner"] == "李工"
    code, body = act("comment", ticket_id, "已联系门店")
    assert code == 0 and body["event"]["action"] == "comment"
    code, body = act("escalate", ticket_id)
    assert code == 0 and body["event"]["action"] == "escalate"
    assert act("resolve", ticket_id)[0] == 0
    code, body = act("close", ticket_id)
    assert code == 2 and "needs a review" in body["error"]["message"]
    code, body = act(
        "close",
        ticket_id,
        "--root-cause",
        "滤网",
        "--resolution",
        "更换",
        "--lessons",
        "巡检",
    )
    assert code == 0 and body["ticket"]["review"]["author"] == "小李"
    listed = monitor("tickets", "reviews", "--json", env=env)
    assert [r["root_cause"] for r in json.loads(listed.stdout)] == ["滤网"]
    code, body = act("reopen", ticket_id)
    assert code != 0  # --note is required
    code, body = act("reopen", ticket_id, "-m", "复发")
    assert code == 0 and body["ticket"]["status"] == "open"
