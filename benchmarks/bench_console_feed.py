"""Console live updates: from an action through one web server to its event
on another web server's ticket stream.

Starts its own noida-db. Two ticket APIs run as the worker mounts them
(``/api``), each with its own :class:`~monitor.web.feed.TicketFeed` and
:class:`~monitor.web.feed.TicketEventFollower` on a real ``tickets`` topic
(two partitions); the ticket service publishes every saved change through a
:class:`~monitor.web.feed.TicketEventPublisher` (aiokafka). A console-style
reader holds ``GET /api/stream`` open on the second server while ``--changes``
comment actions go through the first, one at a time.

For each change it records the seconds from sending the ``POST`` to
(a) its ``200`` answer: the baseline, the write itself (Elasticsearch), and
(b) the event arriving on the other server's stream. Prints one JSON object:
percentiles of both, the median of the feed's own share (b - a) and the ratio
of the medians. Repeats ``--runs`` times on one server set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

from monitor.analysis.tickets.model import Trigger
from monitor.config.rules import load_rules
from monitor.local.embedded import EmbeddedServers, free_port
from monitor.services.ticketing import TicketService
from monitor.sinks.elasticsearch.tickets import TicketStore
from monitor.topics import bootstrap_servers, ensure_topics
from monitor.web.api import api_app
from monitor.web.auth import Authenticator, hash_token
from monitor.web.feed import TicketEventFollower, TicketEventPublisher, TicketFeed

RESPONDER = "bench-responder-token"
TOKENS = f"bench:responder:{hash_token(RESPONDER)}"
RULES = """\
topics:
  空调异味:
    keywords: [空调]
    rules:
      - {name: 负面声量, kind: negative_volume, threshold: 6}
teams:
  facilities: {members: [王工]}
routing: {default_team: facilities}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 4),
        "p90": round(percentile(values, 90), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
    }


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    root = web.Application()
    root.add_subapp("/api", app)
    runner = web.AppRunner(root)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/api"


async def next_ticket_event(response: aiohttp.ClientResponse) -> dict:
    name, data = "", ""
    while True:
        line = (await response.content.readline()).decode()
        if not line:
            raise EOFError("the stream ended")
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and name:
            if name == "ticket":
                return json.loads(data)
            name, data = "", ""


async def measure(servers: EmbeddedServers, args: argparse.Namespace) -> dict:
    assert servers.addresses is not None
    kafka = bootstrap_servers(servers.addresses.kafka_url)
    topic = "tickets-" + uuid.uuid4().hex[:8]
    await ensure_topics(servers.addresses.kafka_url, {topic: 2})
    rules_path = Path(tempfile.mkdtemp()) / "rules.yaml"
    rules_path.write_text(RULES, encoding="utf-8")
    ruleset = load_rules(rules_path)
    prefix = "bench" + uuid.uuid4().hex[:8]
    store = TicketStore.connect(servers.addresses.es_url, prefix)
    service = TicketService(store, lambda: ruleset)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=0)
    await producer.start()

    async def send(key: bytes, value: bytes) -> None:
        await producer.send_and_wait(topic, value, key=key)

    publisher = TicketEventPublisher(send)
    publisher.start()
    service.on_event = publisher.offer
    auth = Authenticator.from_spec(TOKENS)
    feeds = [TicketFeed(), TicketFeed()]
    followers = [TicketEventFollower(feed, kafka, topic) for feed in feeds]
    runners, bases = [], []
    for feed, follower in zip(feeds, followers, strict=True):
        follower.start()
        runner, base = await serve(api_app(service, auth, feed))
        runners.append(runner)
        bases.append(base)
    for follower in followers:
        await asyncio.wait_for(follower.ready.wait(), 60)
    start = datetime.now(timezone.utc).replace(microsecond=0)
    decision = await service.handle_trigger(
        Trigger(
            "空调异味",
            "负面声量",
            "negative_volume",
            None,
            start,
            start + timedelta(minutes=5),
            12.0,
            6.0,
        )
    )
    assert decision.ticket is not None
    ticket_id = decision.ticket.ticket_id
    headers = {"Authorization": f"Bearer {RESPONDER}"}
    answered: list[float] = []
    streamed: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(bases[1] + "/stream", headers=headers) as stream:
                assert stream.status == 200, stream.status
                for n in range(args.warmup + args.changes):
                    note = f"bench {n}"
                    started = time.perf_counter()
                    async with session.post(
                        f"{bases[0]}/tickets/{ticket_id}/actions",
                        headers=headers,
                        json={"action": "comment", "note": note},
                    ) as response:
                        assert response.status == 200, await response.text()
                        acked = time.perf_counter()
                    while True:
                        message = await asyncio.wait_for(next_ticket_event(stream), 30)
                        if message["event"]["note"] == note:
                            break
                    arrived = time.perf_counter()
                    if n >= args.warmup:
                        answered.append(acked - started)
                        streamed.append(arrived - started)
                    await asyncio.sleep(args.pause)
    finally:
        for follower in followers:
            await follower.stop()
        await publisher.stop()
        await producer.stop()
        for runner in runners:
            await runner.cleanup()
        await service.close()
        await store.close()
    feed_share = [s - a for s, a in zip(streamed, answered, strict=True)]
    return {
        "action_answered_s": summary(answered),
        "other_server_stream_s": summary(streamed),
        "feed_share_p50_s": round(statistics.median(feed_share), 4),
        "ratio_p50_stream_to_answer": round(
            statistics.median(streamed) / statistics.median(answered), 2
        ),
    }


async def main_async(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        servers = EmbeddedServers(Path(directory), attach=False)
        servers.start()
        try:
            runs = [await measure(servers, args) for _ in range(args.runs)]
        finally:
            servers.stop()
    return {
        "benchmark": "console_feed",
        "changes_per_run": args.changes,
        "python": platform.python_version(),
        "runs": runs,
        "median_of_runs": {
            "other_server_stream_p50_s": statistics.median(
                r["other_server_stream_s"]["p50"] for r in runs
            ),
            "other_server_stream_p99_s": statistics.median(
                r["other_server_stream_s"]["p99"] for r in runs
            ),
            "action_answered_p50_s": statistics.median(
                r["action_answered_s"]["p50"] for r in runs
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.05, help="s between changes")
    args = parser.parse_args()
    json.dump(asyncio.run(main_async(args)), sys.stdout, ensure_ascii=False, indent=2)
    print()


if __name__ == "__main__":
    main()
