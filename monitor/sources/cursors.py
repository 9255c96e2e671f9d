"""The pollers' durable state: cursor and health per source, on a compacted topic.

Each record of the ``source-state`` topic (one partition,
``cleanup.policy=compact``) is keyed by the source name and carries a
:class:`SourceState` as JSON: the fetcher's opaque cursor, a snapshot of the
source's health counters and the time it was written. The last record of a
source wins. A worker that takes a source over (or ``monitor sources run``
after a crash) reads the topic to its end and resumes from that cursor;
``monitor sources status`` reads the same records, so it sees every worker's
sources.

A cursor is written with ``acks=all`` and :meth:`KafkaCursorStore.save`
returns only once Kafka acknowledged it, so the caller never believes a
cursor durable that is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from monitor.errors import MonitorError
from monitor.sources.base import MAX_ERROR_CHARS, SourceHealth
from monitor.topics import bootstrap_servers, ensure_topics

log = logging.getLogger(__name__)

#: Largest cursor a fetcher may store, in bytes of UTF-8.
MAX_CURSOR_BYTES = 64 * 1024
#: Largest state record read back; larger ones are skipped as foreign.
MAX_STATE_BYTES = MAX_CURSOR_BYTES + 16 * 1024
#: Distinct reject reasons kept in a snapshot (the most frequent).
MAX_REASONS = 20
#: Longest reject reason kept, in characters.
MAX_REASON_CHARS = 40
#: Record format version.
STATE_SCHEMA = 1
#: A source is stale when its last success is older than this many intervals.
STALE_INTERVALS = 3


class CursorTooLarge(MonitorError):
    """A fetcher produced a cursor over :data:`MAX_CURSOR_BYTES`."""

    def __init__(self, source: str, size: int) -> None:
        super().__init__(
            f"source {source!r}: cursor of {size} bytes is over the "
            f"{MAX_CURSOR_BYTES}-byte limit; not stored"
        )
        self.source, self.size = source, size


@dataclass(frozen=True)
class SourceState:
    """One ``source-state`` record: where a poller is and how it is doing.

    Attributes:
        source: The source name (also the record key).
        kind: ``http_poll`` or ``rss``.
        cursor: The fetcher's opaque cursor (None: from the start).
        interval_seconds: The source's polling interval.
        written_at_epoch_s: When the record was written (wall clock).
        fetched: Pages fetched, since the source was first polled.
        accepted: Posts published and acknowledged.
        rejected: Rejected items by reason.
        duplicates: Items dropped as already seen.
        errors: Failed poll attempts.
        last_success_epoch_s: Wall-clock time of the last successful poll.
        cursor_lag_seconds: Age of the newest post of the last page, if known.
        last_error: The last failure, type and message (short), or empty.

    """

    source: str
    kind: str
    cursor: str | None
    interval_seconds: float
    written_at_epoch_s: float
    fetched: int = 0
    accepted: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    duplicates: int = 0
    errors: int = 0
    last_success_epoch_s: float | None = None
    cursor_lag_seconds: float | None = None
    last_error: str = ""

    @classmethod
    def of(
        cls,
        source: str,
        kind: str,
        cursor: str | None,
        interval_seconds: float,
        health: SourceHealth,
        *,
        now_epoch_s: float,
    ) -> SourceState:
        """Snapshot ``health`` with ``cursor``, bounded for the record."""
        reasons = Counter(
            {str(k)[:MAX_REASON_CHARS]: int(v) for k, v in health.rejected.items()}
        )
        return cls(
            source=source,
            kind=kind,
            cursor=cursor,
            interval_seconds=interval_seconds,
            written_at_epoch_s=now_epoch_s,
            fetched=health.fetched,
            accepted=health.accepted,
            rejected=dict(reasons.most_common(MAX_REASONS)),
            duplicates=health.duplicates,
            errors=health.errors,
            last_success_epoch_s=health.last_success_epoch_s,
            cursor_lag_seconds=health.cursor_lag_seconds,
            last_error=health.last_error[:MAX_ERROR_CHARS],
        )

    def is_stale(self, now_epoch_s: float) -> bool:
        """Say whether no poll succeeded in the last :data:`STALE_INTERVALS` intervals.

        A source that never succeeded is stale.
        """
        if self.last_success_epoch_s is None:
            return True
        return now_epoch_s - self.last_success_epoch_s > (
            STALE_INTERVALS * self.interval_seconds
        )

    def restore(self, health: SourceHealth) -> None:
        """Put this snapshot's counters into ``health`` (a poller resuming)."""
        health.fetched = self.fetched
        health.accepted = self.accepted
        health.rejected = Counter(self.rejected)
        health.duplicates = self.duplicates
        health.errors = self.errors
        health.last_success_epoch_s = self.last_success_epoch_s
        health.cursor_lag_seconds = self.cursor_lag_seconds
        health.last_error = self.last_error

    def encode(self) -> bytes:
        """Return the record value (UTF-8 JSON).

        Raises:
            CursorTooLarge: If the cursor is over :data:`MAX_CURSOR_BYTES`.

        """
        if self.cursor is not None:
            size = len(self.cursor.encode("utf-8"))
            if size > MAX_CURSOR_BYTES:
                raise CursorTooLarge(self.source, size)
        return json.dumps(
            {
                "schema": STATE_SCHEMA,
                "source": self.source,
                "kind": self.kind,
                "cursor": self.cursor,
                "interval_seconds": self.interval_seconds,
                "written_at_epoch_s": self.written_at_epoch_s,
                "health": {
                    "fetched": self.fetched,
                    "accepted": self.accepted,
                    "rejected": dict(self.rejected),
                    "duplicates": self.duplicates,
                    "errors": self.errors,
                    "last_success_epoch_s": self.last_success_epoch_s,
                    "cursor_lag_seconds": self.cursor_lag_seconds,
                    "last_error": self.last_error,
                },
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def decode(cls, value: bytes) -> SourceState:
        """Parse a record value written by :meth:`encode`.

        Raises:
            ValueError: If it is too large, not JSON or not a state record.

        """
        if len(value) > MAX_STATE_BYTES:
            raise ValueError(f"state record of {len(value)} bytes is too large")
        try:
            data = json.loads(value)
        except RecursionError:
            raise ValueError("state record nested too deeply") from None
        if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA:
            raise ValueError("not a source-state record")
        health = data.get("health")
        if not isinstance(health, dict):
            raise ValueError("no health in the state record")
        rejected = health.get("rejected") or {}
        if not isinstance(rejected, dict):
            raise ValueError("rejected is not a mapping")
        cursor = data.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise ValueError("cursor is not text")
        return cls(
            source=_text(data.get("source"), "source"),
            kind=_text(data.get("kind"), "kind"),
            cursor=cursor,
            interval_seconds=_number(data.get("interval_seconds"), "interval"),
            written_at_epoch_s=_number(data.get("written_at_epoch_s"), "written_at"),
            fetched=_count(health.get("fetched")),
            accepted=_count(health.get("accepted")),
            rejected={
                str(k)[:MAX_REASON_CHARS]: _count(v)
                for k, v in list(rejected.items())[:MAX_REASONS]
            },
            duplicates=_count(health.get("duplicates")),
            errors=_count(health.get("errors")),
            last_success_epoch_s=_optional_number(health.get("last_success_epoch_s")),
            cursor_lag_seconds=_optional_number(health.get("cursor_lag_seconds")),
            last_error=str(health.get("last_error") or "")[:MAX_ERROR_CHARS],
        )


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} is not text")
    return value[:200]


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is not a number")
    if not math.isfinite(value):
        raise ValueError(f"{what} is not finite")
    return float(value)


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value, "a time")


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("a counter is not a non-negative integer")
    return value


class KafkaCursorStore:
    """Cursors and health of polling sources on a compacted Kafka topic.

    Implements :class:`~monitor.sources.base.CursorStore` (``load`` /
    ``save`` of a bare cursor) and reads and writes whole
    :class:`SourceState` records for the runner and ``sources status``.

    Args:
        kafka_url: Kafka bootstrap (``kafka://h:9092`` or ``h:9092,...``).
        topic: The state topic (``source-state``).
        replicas: Replication factor when the topic is created.
        read_timeout: Seconds :meth:`load_all` may take to reach the end.
        write_timeout: Seconds a write may wait for its acknowledgement.

    """

    def __init__(
        self,
        kafka_url: str,
        topic: str,
        *,
        replicas: int = 1,
        read_timeout: float = 30.0,
        write_timeout: float = 30.0,
    ) -> None:
        self.kafka_url = kafka_url
        self.topic = topic
        self.replicas = replicas
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def ensure_topic(self) -> None:
        """Create the topic (one partition, compacted) if it does not exist."""
        await ensure_topics(
            self.kafka_url,
            {self.topic: 1},
            replicas=self.replicas,
            compacted=(self.topic,),
        )

    async def start(self) -> None:
        """Connect the producer (writes connect on first use otherwise)."""
        await self._connected()

    async def close(self) -> None:
        """Disconnect; pending writes were already acknowledged."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def load(self, source: str) -> str | None:
        """Return the last saved cursor of ``source``, or None."""
        state = await self.load_state(source)
        return None if state is None else state.cursor

    async def save(self, source: str, cursor: str) -> None:
        """Store a bare cursor for ``source`` (no health); returns once acked.

        The kind and interval of the last record are kept, when there is one.
        """
        previous = await self.load_state(source)
        await self.write(
            SourceState(
                source=source,
                kind=previous.kind if previous else "unknown",
                cursor=cursor,
                interval_seconds=previous.interval_seconds if previous else 0.0,
                written_at_epoch_s=time.time(),
            )
        )

    async def load_state(self, source: str) -> SourceState | None:
        """Return the last state record of ``source``, or None."""
        return (await self.load_all()).get(source)

    async def write(self, state: SourceState) -> None:
        """Write ``state`` keyed by its source; returns once Kafka acknowledged it.

        Raises:
            CursorTooLarge: If the cursor is over :data:`MAX_CURSOR_BYTES`.
            MonitorError: If Kafka does not acknowledge within ``write_timeout``.

        """
        value = state.encode()
        producer = await self._connected()
        try:
            await asyncio.wait_for(
                producer.send_and_wait(
                    self.topic, value=value, key=state.source.encode("utf-8")
                ),
                self.write_timeout,
            )
        except asyncio.TimeoutError:
            raise MonitorError(
                f"source {state.source!r}: Kafka did not acknowledge the state "
                f"record on {self.topic!r} within {self.write_timeout:.0f} s"
            ) from None

    async def load_all(self) -> dict[str, SourceState]:
        """Read the topic to its end; return the last valid record per source.

        Records that are not state records (or too large) are skipped with a
        warning, so one bad record cannot hide a source's earlier cursor. A
        missing topic reads as empty.

        Raises:
            MonitorError: If the end is not reached within ``read_timeout``.

        """
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(self.kafka_url),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        states: dict[str, SourceState] = {}
        try:
            async with asyncio.timeout(self.read_timeout):
                await consumer.start()
                await consumer.topics()  # refreshes the cluster metadata
                partitions = consumer.partitions_for_topic(self.topic) or set()
                tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
                if not tps:
                    return {}
                consumer.assign(tps)
                ends = await consumer.end_offsets(tps)
                await consumer.seek_to_beginning(*tps)
                wanted = {tp for tp in tps if ends[tp] > 0}
                while wanted:
                    batches = await consumer.getmany(timeout_ms=500)
                    for tp, records in batches.items():
                        for record in records:
                            if record.offset < ends[tp]:
                                self._take(states, record)
                    for tp in list(wanted):
                        if await consumer.position(tp) >= ends[tp]:
                            wanted.discard(tp)
        except TimeoutError:
            raise MonitorError(
                f"could not read the source-state topic {self.topic!r} to its end "
                f"within {self.read_timeout:.0f} s"
            ) from None
        except KafkaError as exc:
            raise MonitorError(
                f"could not read the source-state topic {self.topic!r}: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
        return states

    def _take(self, states: dict[str, SourceState], record: Any) -> None:
        if record.value is None:  # a tombstone: the source was forgotten
            if record.key is not None:
                states.pop(record.key.decode("utf-8", "replace"), None)
            return
        try:
            state = SourceState.decode(record.value)
        except ValueError as exc:
            log.warning(
                "%s[%d]@%d is not a source-state record (%s); skipped",
                record.topic,
                record.partition,
                record.offset,
                str(exc)[:200],
            )
            return
        states[state.source] = state

    async def _connected(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=bootstrap_servers(self.kafka_url),
                    acks="all",
                    max_request_size=MAX_STATE_BYTES * 2,
                )
                await producer.start()
                self._producer = producer
            return self._producer
