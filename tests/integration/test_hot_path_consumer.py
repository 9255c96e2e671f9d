"""The hot path's own consumer against a real Kafka-protocol server (noida-db):
offsets committed only once a batch's effects are done, the backlog finished
and committed before partitions move, and nothing read twice or skipped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.local.embedded import EmbeddedServers
from monitor.metrics import MonitorMetrics
from monitor.pipelines.backlog import Backlog
from monitor.pipelines.batches import Pipeline
from monitor.pipelines.consumer import BatchConsumer, consumer_group
from monitor.settings import Settings
from monitor.stages.score import PostScorer
from monitor.topics import bootstrap_servers, ensure_topics, pace_empty_fetches

PARTITIONS = 2


def pipeline_for(kafka_url: str, app_id: str, instance: str) -> Pipeline:
    settings = Settings(
        kafka_url=kafka_url,
        es_url="http://127.0.0.1:9",  # never used: the handlers here write nothing
        app_id=app_id,
        instance_id=instance,
        score_batch_size=20,
    )
    return Pipeline(
        settings=settings,
        topics=None,  # type: ignore[arg-type]  # nothing is sent
        metrics=MonitorMetrics.create(CollectorRegistry()),
        scorer=PostScorer([], LabelThresholds()),
        posts_sink=None,  # type: ignore[arg-type]
    )


class Effects:
    """A handler that queues each batch's trailing effect on a backlog it gates."""

    def __init__(self, backlog: Backlog) -> None:
        self.backlog = backlog
        self.handled: list[tuple[int, int]] = []
        self.written: list[tuple[int, int]] = []
        self.gate = asyncio.Event()

    async def __call__(self, pipeline: Pipeline, events: Sequence[Any]) -> None:
        self.handled += [(e.message.partition, e.message.offset) for e in events]
        await self.backlog.put(events, self.write)

    async def write(self, pipeline: Pipeline, events: Sequence[Any]) -> None:
        await self.gate.wait()
        self.written += [(e.message.partition, e.message.offset) for e in events]


def hot_path(
    kafka_url: str, app_id: str, topic: str, instance: str
) -> tuple[BatchConsumer, Effects]:
    pipeline = pipeline_for(kafka_url, app_id, instance)
    backlog = Backlog(pipeline, name="index", limit=1_000)
    effects = Effects(backlog)
    app = faust.App(f"{app_id}-{instance}")  # its settings only; never started
    consumer = BatchConsumer(
        app, pipeline, topic=topic, name="hot", handle=effects, backlog=backlog
    )
    return consumer, effects


async def committed(kafka_url: str, app_id: str, topic: str) -> dict[int, int | None]:
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url),
        group_id=consumer_group(app_id),
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        return {
            p: await reader.committed(TopicPartition(topic, p))
            for p in range(PARTITIONS)
        }
    finally:
        await reader.stop()


async def until_committed(
    kafka_url: str, app_id: str, topic: str, expected: dict[int, int]
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (found := await committed(kafka_url, app_id, topic)) != expected:
        if loop.time() > deadline:
            raise AssertionError(f"committed {found}, expected {expected}")
        await asyncio.sleep(0.5)


async def produce(kafka_url: str, topic: str, count: int, start: int = 0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(kafka_url))
    await producer.start()
    try:
        for n in range(start, start + count):
            await producer.send(topic, b"{}", partition=n % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


async def until(condition: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_offsets_wait_for_the_backlog_then_a_rebalance_moves_them_intact(
    noida: EmbeddedServers,
) -> None:
    assert noida.addresses is not None
    pace_empty_fetches()  # as the worker does
    kafka_url = noida.addresses.kafka_url
    app_id, topic = f"hot-{uuid.uuid4().hex[:8]}", f"posts-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_url, {topic: PARTITIONS})
    await produce(kafka_url, topic, 40)

    first, effects = hot_path(kafka_url, app_id, topic, "a")
    await first.start()
    second = None
    try:
        await until(lambda: len(effects.handled) == 40, 60, "40 records handled")
        await asyncio.sleep(3.5)  # the periodic commit (2.8 s) has had its chance
        # handled, counted, but their trailing effects are not written:
        # nothing may be committed
        assert await committed(kafka_url, app_id, topic) == {0: None, 1: None}
        assert sorted(effects.handled) == sorted(
            (n % PARTITIONS, n // PARTITIONS) for n in range(40)
        )

        # A second member joins: the revoke waits for the backlog, which is
        # written once the gate opens, and commits before letting go.
        second, more = hot_path(kafka_url, app_id, topic, "b")
        more.gate.set()
        await second.start()  # joins in the background
        await asyncio.sleep(2.0)
        assert second.consumer is not None
        assert second.consumer.assignment() == set()  # the revoke is waiting
        assert await committed(kafka_url, app_id, topic) == {0: None, 1: None}
        effects.gate.set()
        await until(
            lambda: (
                first.consumer is not None
                and second.consumer is not None
                and len(first.consumer.assignment()) == 1
                and len(second.consumer.assignment()) == 1
            ),
            90,
            "the group to split the partitions",
        )
        # the revoke waited for the backlog: all 40 written before moving
        assert sorted(effects.written) == sorted(effects.handled)
        # Its commit may still be refused: noida-db starts the next generation
        # before the old members rejoin (IllegalGeneration), where Kafka takes
        # a commit from a member that is revoking. Then the new owner reads
        # the records again; their effects are idempotent.
        at_revoke = await committed(kafka_url, app_id, topic)
        assert all(at_revoke[p] in (None, 20) for p in range(PARTITIONS)), at_revoke

        # New records go to the partitions' owners, nothing is lost, and the
        # only records read twice are those not committed when they moved.
        await produce(kafka_url, topic, 20, start=40)
        everything = {(n % PARTITIONS, n // PARTITIONS) for n in range(60)}
        await until(
            lambda: set(effects.written + more.written) == everything, 60, "60 written"
        )
        handled = effects.handled + more.handled
        twice = {where for where in handled if handled.count(where) > 1}
        assert all(
            offset < 20 and at_revoke[partition] is None for partition, offset in twice
        )
        # the periodic commit catches up with what the backlog wrote
        await until_committed(kafka_url, app_id, topic, {0: 30, 1: 30})
    finally:
        for consumer in (first, second):
            if consumer is not None:
                await consumer.stop()
    # stopping changes nothing that was committed, and leaves no record behind
    assert await committed(kafka_url, app_id, topic) == {0: 30, 1: 30}


async def test_an_upgraded_worker_resumes_where_the_faust_group_stopped(
    noida: EmbeddedServers,
) -> None:
    assert noida.addresses is not None
    pace_empty_fetches()
    kafka_url = noida.addresses.kafka_url
    app_id, topic = f"hot-{uuid.uuid4().hex[:8]}", f"posts-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_url, {topic: PARTITIONS})
    await produce(kafka_url, topic, 20)
    # what the Faust app's group (MONITOR_APP_ID) committed before the upgrade
    old = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url),
        group_id=app_id,
        enable_auto_commit=False,
    )
    await old.start()
    try:
        old.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await old.commit({TopicPartition(topic, 0): 6})  # partition 1: none
    finally:
        await old.stop()

    consumer, effects = hot_path(kafka_url, app_id, topic, "a")
    effects.gate.set()
    await consumer.start()
    try:
        await until(lambda: len(effects.written) == 4 + 10, 60, "14 records written")
        await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
    assert sorted(effects.handled) == [(0, n) for n in range(6, 10)] + [
        (1, n) for n in range(10)
    ]
    assert await committed(kafka_url, app_id, topic) == {0: 10, 1: 10}
