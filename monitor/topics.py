"""The Kafka topics: each declared once, and created on standard admin APIs.

Each topic carries one record type from :mod:`monitor.records`: ``posts``
:class:`~monitor.records.Post`, ``scored-posts``
:class:`~monitor.records.ScoredPost`, ``window-partials``
:class:`~monitor.records.PartitionReport` (one partition: a partition's
partials and heartbeats stay in order), ``bursts``
:class:`~monitor.records.Burst`, ``triggers``
:class:`~monitor.records.TriggerEvent` (one partition: one worker applies the
ticket policy) and ``dead-letters`` :class:`~monitor.records.DeadLetter`.
``count-state-posts`` and ``merge-state`` are the stages' state logs
(:mod:`monitor.sinks.statelog`); ``tickets`` is reserved for ticket events.
The workers write ``scored-posts`` for other consumers only if
``MONITOR_PUBLISH_SCORED_POSTS`` is on, and never read it: the hot path
scores, counts and indexes in one pass over ``posts``.

:func:`pace_empty_fetches` keeps consumers from spinning on a broker that
answers empty fetches at once (the embedded server).

Agents read raw bytes and decode them themselves, so that a record that does
not decode becomes a dead letter instead of crashing the agent (Faust acks
and drops an event whose value fails to deserialise).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.errors import TopicAlreadyExistsError

from monitor.errors import MonitorError
from monitor.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    """The topics of one app."""

    posts: faust.TopicT
    scored_posts: faust.TopicT
    window_partials: faust.TopicT
    count_state: faust.TopicT
    merge_state: faust.TopicT
    bursts: faust.TopicT
    triggers: faust.TopicT
    tickets: faust.TopicT
    dead_letters: faust.TopicT


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    """Declare the topics on ``app`` (raw bytes keys and values)."""

    def topic(name: str, partitions: int = settings.topic_partitions) -> faust.TopicT:
        return app.topic(
            name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
            replicas=settings.topic_replicas,
        )

    return Topics(
        posts=topic(settings.topic_posts),
        scored_posts=topic(settings.topic_scored_posts),
        window_partials=topic(settings.topic_window_partials, 1),
        count_state=topic(settings.topic_count_state),
        merge_state=topic(settings.topic_merge_state, 1),
        bursts=topic(settings.topic_bursts),
        triggers=topic(settings.topic_triggers, 1),
        tickets=topic(settings.topic_tickets),
        dead_letters=topic(settings.topic_dead_letters),
    )


def bootstrap_servers(kafka_url: str) -> str:
    """Return the ``h1:9092,h2:9092`` form the Kafka clients take.

    Accepts ``kafka://h1:9092;kafka://h2:9092`` and ``h1:9092,h2:9092``.
    """
    hosts = []
    for part in kafka_url.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            hosts.append(part.rstrip("/"))
    if not hosts:
        raise ValueError(f"no Kafka host in {kafka_url!r}")
    return ",".join(hosts)


def faust_broker(kafka_url: str) -> str:
    """Return the broker URL list in the form Faust takes."""
    return ";".join(
        f"kafka://{host}" for host in bootstrap_servers(kafka_url).split(",")
    )


async def ensure_topics(
    kafka_url: str,
    partitions: Mapping[str, int],
    *,
    replicas: int = 1,
    compacted: Collection[str] = (),
) -> None:
    """Create the topics that do not exist yet, with their partition counts.

    Brokers that auto-create unknown topics would give them one partition at
    the first write, so every command that writes creates its topics first.
    An existing topic with fewer partitions than configured is reported, not
    changed: adding partitions moves keys between them. Topics named in
    ``compacted`` are created with ``cleanup.policy=compact`` (state logs).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(kafka_url))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=name,
                num_partitions=count,
                replication_factor=replicas,
                topic_configs=(
                    {"cleanup.policy": "compact"} if name in compacted else {}
                ),
            )
            for name, count in partitions.items()
            if name not in existing
        ]
        if missing:
            response = await admin.create_topics(missing)
            failed = [
                f"{name}: error {code} {message or ''}".strip()
                for name, code, *rest in getattr(response, "topic_errors", [])
                for message in [rest[0] if rest else None]
                # 36: created meanwhile by another process
                if code not in (0, TopicAlreadyExistsError.errno)
            ]
            if failed:
                raise MonitorError("cannot create topics: " + "; ".join(failed))
            log.info("created topics %s", ", ".join(topic.name for topic in missing))
        present = [name for name in partitions if name in existing]
        if present:
            described = await admin.describe_topics(present)
            for topic in described:
                count = len(topic.get("partitions", []))
                wanted = partitions[topic["topic"]]
                if count < wanted:
                    log.warning(
                        "topic %s has %d partitions, fewer than the %d configured",
                        topic["topic"],
                        count,
                        wanted,
                    )
    finally:
        await admin.close()


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Every topic name with its partition count, for creating them up front.

    ``window-partials`` and ``triggers`` have one partition: they carry a few
    pre-aggregated records per window, merged (and turned into tickets) in
    one place so that each series sees every partition's counts.
    """
    partitions = {
        name: settings.topic_partitions
        for name in (
            settings.topic_posts,
            settings.topic_scored_posts,
            settings.topic_bursts,
            settings.topic_tickets,
            settings.topic_dead_letters,
        )
    }
    partitions[settings.topic_count_state] = settings.topic_partitions
    partitions[settings.topic_window_partials] = 1
    partitions[settings.topic_merge_state] = 1
    partitions[settings.topic_triggers] = 1
    return partitions


async def prepare_topics(settings: Settings, *, timeout: float = 120.0) -> None:
    """Create the topics with their partition counts, waiting for Kafka to answer.

    Runs before anything writes, because a broker that auto-creates topics
    would give them a single partition. Idempotent.

    Raises:
        MonitorError: If Kafka does not answer within ``timeout`` seconds.

    """
    assert settings.kafka_url is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.5
    while True:
        try:
            await ensure_topics(
                settings.kafka_url,
                topic_partitions(settings),
                replicas=settings.topic_replicas,
                compacted=(settings.topic_count_state, settings.topic_merge_state),
            )
            return
        except MonitorError:
            raise  # the broker answered and refused: waiting will not help
        except Exception as exc:
            if loop.time() >= deadline:
                raise MonitorError(
                    f"Kafka not ready after {timeout:.0f} s "
                    f"({settings.kafka_url}): {exc}"
                ) from exc
            log.warning("waiting for Kafka at %s: %s", settings.kafka_url, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def source_topic_partitions(settings: Settings) -> dict[str, int]:
    """Return the pollers' topics with their partition counts.

    ``source-state`` has one partition (a few records per source, read whole
    by every worker that takes a source); ``source-leases`` has one partition
    per slot and carries no records.
    """
    return {
        settings.topic_source_state: 1,
        settings.topic_source_leases: settings.source_slots,
    }


async def prepare_source_topics(settings: Settings) -> None:
    """Create the pollers' topics if missing (state compacted); idempotent."""
    assert settings.kafka_url is not None
    await ensure_topics(
        settings.kafka_url,
        source_topic_partitions(settings),
        replicas=settings.topic_replicas,
        compacted=(settings.topic_source_state,),
    )


# --- Empty fetches paced on the client -------------------------------------
#
# Empty Kafka fetches paced on the client, for brokers that answer them at once.
#
# A Kafka broker holds a fetch that finds no new records for up to the
# consumer's ``fetch_max_wait_ms`` (Faust asks for 1.5 s), so an idle consumer
# sends a fetch or two a second. The embedded server (noida-db) answers at
# once instead: measured, one idle aiokafka consumer sent about 2,000 fetches a
# second and used 30 % of a core, and a busy worker spent a third of its CPU
# sending fetches for partitions with nothing new.
#
# pace_empty_fetches makes a fetch that came back empty sooner than
# MIN_EMPTY_FETCH_SECONDS wait out the rest of that time before the
# consumer sends the next one to the same broker. Against a real broker it
# changes nothing (an empty fetch already took ``fetch_max_wait_ms``); a fetch
# that brings records is never delayed. The price on a broker that does not
# wait: a record arriving at an idle partition waits up to that long longer.

#: An empty fetch answered sooner than this is held until this long after it
#: was sent (seconds).
MIN_EMPTY_FETCH_SECONDS = 0.05

_FetchRequest = Callable[..., Awaitable[bool]]


def pace_empty_fetches(minimum: float = MIN_EMPTY_FETCH_SECONDS) -> None:
    """Pace empty fetches of every aiokafka consumer in this process (idempotent).

    Args:
        minimum: Seconds an empty fetch takes at least, from send to the
            next fetch to the same broker.

    """
    current = Fetcher._proc_fetch_request
    original: _FetchRequest = getattr(current, "__wrapped__", current)

    @functools.wraps(original)
    async def paced(self: Fetcher, *args: Any, **kwargs: Any) -> bool:
        started = time.monotonic()
        has_new_data = await original(self, *args, **kwargs)
        if not has_new_data:
            left = minimum - (time.monotonic() - started)
            if left > 0:
                try:
                    await asyncio.sleep(left)
                except asyncio.CancelledError:
                    # As aiokafka's own: the consumer closing, or the
                    # partition unassigned, cancels the request quietly.
                    return False
        return has_new_data

    Fetcher._proc_fetch_request = paced  # type: ignore[method-assign]
