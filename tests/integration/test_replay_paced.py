"""``monitor replay --speed N --shift-to-now`` on a real broker (noida-db):
posts go out paced by their timestamps and arrive stamped as live traffic."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from monitor.topics import bootstrap_servers
from tests.integration.conftest import Stack
from tests.support import make_posts

pytestmark = pytest.mark.integration


def read_back(stack: Stack, count: int) -> list[Any]:
    async def consume() -> list[Any]:
        consumer = AIOKafkaConsumer(
            stack.posts_topic,
            bootstrap_servers=bootstrap_servers(stack.env["MONITOR_KAFKA_URL"]),
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        records: list[Any] = []
        try:
            async with asyncio.timeout(30):
                while len(records) < count:
                    for batch in (await consumer.getmany(timeout_ms=500)).values():
                        records.extend(batch)
        finally:
            await consumer.stop()
        return records

    return asyncio.run(consume())


def test_paced_replay_keeps_the_gaps_at_speed_and_plays_as_live(stack: Stack) -> None:
    posts = make_posts(11, prefix="pace")  # 3 s apart: 30 s of event time
    feed = stack.write_jsonl(posts, "paced.jsonl")
    before = datetime.now(timezone.utc)
    done = stack.monitor("replay", str(feed), "--speed", "20", "--shift-to-now")
    after = datetime.now(timezone.utc)
    assert "sent 11 posts" in done.stdout, done.stdout + done.stderr
    records = sorted(read_back(stack, 11), key=lambda r: r.timestamp)
    sent_over = (records[-1].timestamp - records[0].timestamp) / 1000
    assert 1.2 <= sent_over <= 5.0, f"30 s at speed 20 took {sent_over:.2f} s"
    stamped = [
        datetime.fromisoformat(json.loads(r.value)["published_at"]) for r in records
    ]
    assert before <= stamped[0] <= after
    gaps = [(b - a).total_seconds() for a, b in zip(stamped, stamped[1:], strict=False)]
    assert gaps == pytest.approx([0.15] * 10, abs=1e-6)  # 3 s / 20
