"""The stages' state log: a compacted Kafka topic, one partition per input partition.

Keys are ``"<partition>:..."``; a ``None`` value deletes (a tombstone, so the
topic can be compacted). Values are versioned JSON
(:func:`monitor.stages.state.encode_state`). Writes go to the partition given,
from batch handlers, and are awaited before the batch is acknowledged.
Restoring reads the partition from the beginning with a plain consumer (no
group), keeping each key's latest value. A Faust table would do the same, but
Faust's table recovery stalled the consumer after a restart on the local
server, and a table cannot be written from ``take_events`` batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from monitor.stages.state import decode_state, encode_state, write_steps
from monitor.topics import bootstrap_servers


class StateLog:
    """A :class:`~monitor.stages.state.StateStore` on a Kafka topic."""

    def __init__(self, topic: faust.TopicT, kafka_url: str) -> None:
        """Log to ``topic`` (raw keys and values) on the cluster at ``kafka_url``."""
        self.topic = topic
        self.kafka_url = kafka_url

    async def entries(self, partition: int) -> list[tuple[str, Any]]:
        """Return this partition's entries (latest value per key), decoded."""
        return await read_state_log(
            self.kafka_url, self.topic.get_topic_name(), partition
        )

    async def write_in_order(
        self,
        partition: int,
        writes: Mapping[str, Any | None],
        commits: Callable[[str], bool],
    ) -> None:
        """Log ``writes`` in three acknowledged steps: values, commits, deletes.

        (Without idempotence the producer may deliver a later record after an
        earlier one failed, so each step waits for the one before.)
        """
        for step in write_steps(writes, commits):
            await asyncio.gather(*(await self.write(partition, step)))

    async def write(
        self, partition: int, writes: Mapping[str, Any | None]
    ) -> list[Awaitable[Any]]:
        """Log ``key -> value`` (``None`` deletes); return the deliveries."""
        futures = []
        for key, value in writes.items():
            raw = None if value is None else encode_state(value)
            futures.append(
                await self.topic.send(
                    key=key.encode("utf-8"), value=raw, partition=partition
                )
            )
        return futures


async def read_state_log(
    kafka_url: str, topic: str, partition: int
) -> list[tuple[str, Any]]:
    """Return a state-log partition's entries (latest value per key), decoded.

    Reads from the beginning with a plain consumer (no group).
    """
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url),
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    latest: dict[bytes, bytes | None] = {}
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
            for message in batches.get(tp, []):
                latest[message.key] = message.value
    finally:
        await consumer.stop()
    entries = []
    for raw_key, value in latest.items():
        if value is not None:
            key = raw_key.decode("utf-8")
            entries.append((key, decode_state(key, value)))
    return entries


async def write_state_log(
    kafka_url: str,
    topic: str,
    partition: int,
    writes: Mapping[str, Any | None],
    commits: Callable[[str], bool],
) -> None:
    """Log ``writes`` (``None`` deletes) outside a worker: values, commits, deletes.

    Each step is acknowledged (``acks=all``) before the next, as
    :meth:`StateLog.write_in_order` does.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(kafka_url), acks="all"
    )
    await producer.start()
    try:
        for step in write_steps(writes, commits):
            futures = [
                await producer.send(
                    topic,
                    key=key.encode("utf-8"),
                    value=None if value is None else encode_state(value),
                    partition=partition,
                )
                for key, value in step.items()
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
