"""Reading recent dead letters back from their topic."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from monitor.records import DeadLetter, decode_dead_letter
from monitor.topics import bootstrap_servers

log = logging.getLogger(__name__)


async def read_dead_letters(
    kafka_url: str, topic: str, *, limit: int
) -> list[DeadLetter]:
    """Return up to ``limit`` most recent dead letters, oldest first.

    Reads without a consumer group (nothing is committed), the last
    ``limit`` records of each partition, merged by ``failed_at``.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        await consumer.topics()  # refreshes the cluster metadata
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        beginnings = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        wanted = {tp for tp in tps if ends[tp] > beginnings[tp]}
        for tp in tps:
            consumer.seek(tp, max(beginnings[tp], ends[tp] - limit))
        letters: list[DeadLetter] = []
        while wanted:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp] and record.value is not None:
                        try:
                            letters.append(decode_dead_letter(record.value))
                        except Exception as exc:  # noqa: BLE001 - one bad record
                            # Written by someone else, or garbled: skipped, so
                            # one record cannot hide all the others.
                            log.warning(
                                "%s[%d]@%d is not a dead letter (%s); skipped",
                                tp.topic,
                                tp.partition,
                                record.offset,
                                type(exc).__name__,
                            )
            for tp in list(wanted):
                if await consumer.position(tp) >= ends[tp]:
                    wanted.discard(tp)
        letters.sort(key=lambda letter: letter.failed_at)
        return letters[-limit:] if limit else []
    finally:
        await consumer.stop()
