"""KafkaCursorStore on noida-db: cursors and health survive a new store, the last
write wins, sources do not disturb each other, and the topic is compacted."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from monitor.local.embedded import EmbeddedServers
from monitor.sources.base import SourceHealth
from monitor.sources.cursors import KafkaCursorStore, SourceState
from monitor.topics import bootstrap_servers

pytestmark = pytest.mark.integration


def _state(source: str, cursor: str, accepted: int) -> SourceState:
    health = SourceHealth(accepted=accepted, fetched=1, last_success_epoch_s=1.7e9)
    return SourceState.of(source, "http_poll", cursor, 30.0, health, now_epoch_s=1.8e9)


async def _cleanup_policy(kafka_url: str, topic: str) -> str | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(kafka_url))
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await admin.close()
    for response in described:
        for resource in response.resources:
            for entry in resource[4]:
                if entry[0] == "cleanup.policy":
                    return str(entry[1])
    return None


async def test_cursor_store_round_trip_last_write_wins(noida: EmbeddedServers) -> None:
    assert noida.addresses is not None
    kafka_url = noida.addresses.kafka_url
    topic = "source-state-" + uuid.uuid4().hex[:8]
    store = KafkaCursorStore(kafka_url, topic, read_timeout=20)
    await store.ensure_topic()
    await store.ensure_topic()  # idempotent
    try:
        assert await store.load("reviews") is None  # nothing stored yet
        await store.write(_state("reviews", "c1", 10))
        await store.write(_state("news", "n1", 5))
        await store.write(_state("reviews", "c2", 20))
        await store.save("reviews", "c3")  # the bare CursorStore protocol
        assert await store.load("reviews") == "c3"
    finally:
        await store.close()

    # A new store (another worker, a restarted process) reads the same.
    fresh = KafkaCursorStore(kafka_url, topic, read_timeout=20)
    try:
        states = await fresh.load_all()
        assert set(states) == {"reviews", "news"}
        assert states["reviews"].cursor == "c3"
        assert states["reviews"].kind == "http_poll"  # kept from the last record
        assert states["news"].cursor == "n1" and states["news"].accepted == 5
        await fresh.write(_state("reviews", "c4", 30))
        again = await fresh.load_all()
        assert again["reviews"].cursor == "c4" and again["reviews"].accepted == 30
        assert again["news"] == states["news"], "another source's record untouched"
    finally:
        await fresh.close()
    assert await _cleanup_policy(kafka_url, topic) == "compact"


async def test_foreign_records_are_skipped_not_fatal(noida: EmbeddedServers) -> None:
    from aiokafka import AIOKafkaProducer

    assert noida.addresses is not None
    kafka_url = noida.addresses.kafka_url
    topic = "source-state-" + uuid.uuid4().hex[:8]
    store = KafkaCursorStore(kafka_url, topic, read_timeout=20)
    await store.ensure_topic()
    try:
        await store.write(_state("reviews", "good", 1))
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(kafka_url))
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"{not json", key=b"reviews")
        finally:
            await producer.stop()
        async with asyncio.timeout(30):
            assert await store.load("reviews") == "good"
    finally:
        await store.close()


async def test_missing_topic_reads_as_empty(noida: EmbeddedServers) -> None:
    assert noida.addresses is not None
    store = KafkaCursorStore(
        noida.addresses.kafka_url, "absent-" + uuid.uuid4().hex[:8], read_timeout=10
    )
    assert await store.load_all() == {}
