"""Empty fetches on the embedded server are paced: an idle consumer stays idle.

noida-db answers a fetch that finds nothing at once, where Kafka would hold
it for ``fetch_max_wait_ms``; without pacing an idle aiokafka consumer sends
thousands of fetches a second (see pace_empty_fetches in monitor/topics.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.consumer.fetcher import Fetcher

from monitor.local.embedded import EmbeddedServers
from monitor.topics import (
    MIN_EMPTY_FETCH_SECONDS,
    bootstrap_servers,
    ensure_topics,
    pace_empty_fetches,
)


async def _idle_fetches(url: str, topic: str, seconds: float) -> tuple[int, float]:
    """Fetches an idle consumer sends in ``seconds``; then how fast a record arrives."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=url, group_id=None, auto_offset_reset="latest"
    )
    sent = 0
    proc = Fetcher._proc_fetch_request

    async def counting(self: Fetcher, *args: object, **kwargs: object) -> bool:
        nonlocal sent
        sent += 1
        return await proc(self, *args, **kwargs)

    Fetcher._proc_fetch_request = counting  # type: ignore[method-assign]
    try:
        await consumer.start()
        await asyncio.sleep(0.5)  # positions found, fetching
        before = sent
        await asyncio.sleep(seconds)
        idle = sent - before
        producer = AIOKafkaProducer(bootstrap_servers=url)
        await producer.start()
        try:
            started = time.monotonic()
            await producer.send_and_wait(topic, b"x", partition=0)
            await asyncio.wait_for(consumer.getone(), 10)
            delay = time.monotonic() - started
        finally:
            await producer.stop()
    finally:
        Fetcher._proc_fetch_request = proc  # type: ignore[method-assign]
        await consumer.stop()
    return idle, delay


@pytest.fixture
def unpaced() -> object:
    """Restore aiokafka's own fetch after the test (pacing is process-wide)."""
    original = Fetcher._proc_fetch_request
    yield getattr(original, "__wrapped__", original)
    Fetcher._proc_fetch_request = original  # type: ignore[method-assign]


def test_an_idle_consumer_sends_few_fetches_and_a_record_still_comes_at_once(
    noida: EmbeddedServers, unpaced: object
) -> None:
    assert noida.addresses is not None
    kafka_url = noida.addresses.kafka_url
    url = bootstrap_servers(kafka_url)
    topic = f"pacing-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(kafka_url, {topic: 1}))
    Fetcher._proc_fetch_request = unpaced  # type: ignore[assignment]
    raw, _ = asyncio.run(_idle_fetches(url, topic, 1.0))
    pace_empty_fetches()
    pace_empty_fetches()  # a second call does not pace twice
    paced, delay = asyncio.run(_idle_fetches(url, topic, 1.0))
    # The server answers empty fetches at once: unpaced, hundreds a second.
    assert raw > 200, raw
    assert paced <= 1.0 / MIN_EMPTY_FETCH_SECONDS + 5, paced
    assert delay < 1.0, delay
