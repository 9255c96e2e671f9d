"""The hot path's own Kafka consumer: ``posts`` read in batches, committed by hand.

Faust hands an agent one event at a time: per record its consumer thread
decodes, its conductor awaits a callback, the stream queues, wraps and
acknowledges an event, and ``take_events`` gathers them again. On the
busiest topic that machinery cost about a quarter of the worker's main
thread (py-spy), for nothing the hot path uses: it handles whole batches.
So ``posts`` is read by an :class:`aiokafka.AIOKafkaConsumer` of its own,
in its own consumer group (``<MONITOR_APP_ID>-posts``), one ``getmany`` per
batch, and the rest of the app stays on Faust.

What Faust did for the stream is done here, explicitly:

- **Commit after effects.** Offsets are committed every
  ``broker_commit_interval`` (Faust's setting, 2.8 s), and only up to records
  whose every effect is durable: the batch handled (see
  :func:`~monitor.pipelines.batches.handle_batch`), and the records the
  index backlog holds written (:class:`~monitor.stages.offsets.CommitTracker`
  commits up to the first record still held).
- **Rebalances.** Before partitions move, ``on_partitions_revoked`` waits for
  the batch in flight and the backlog, commits, and only then lets the
  count stage drop the partitions; records fetched for a partition that is
  no longer assigned are not handled.
- **Stops.** The loop finishes its batch, the backlog is written, the last
  offsets committed and the consumer leaves the group. A stop that cannot
  finish (Elasticsearch down) is cut by the shutdown clock, and whatever was
  not committed is read again by the next owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaConnectionError
from aiokafka.structs import OffsetAndMetadata

from monitor.pipelines.backlog import Backlog
from monitor.pipelines.batches import (
    BatchHandler,
    Pipeline,
    describe_error,
    exit_for_restart,
    handle_batch,
)
from monitor.sinks.retry import backoff_delays
from monitor.stages.offsets import CommitTracker, InFlight
from monitor.topics import bootstrap_servers

log = logging.getLogger(__name__)


def consumer_group(app_id: str) -> str:
    """Return the consumer group of the hot path's consumer for app ``app_id``."""
    return f"{app_id}-posts"


class BatchConsumer:
    """Reads one topic in batches and hands them to ``handle``; commits what is done.

    ``handle(pipeline, records)`` gets :class:`~monitor.stages.offsets.InFlight`
    records (shaped like Faust events) through
    :func:`~monitor.pipelines.batches.handle_batch` (retries, outages waited
    out, bisection, dead letters); ``backlog`` is where it may leave trailing
    effects, holding their records. ``assigned`` and ``revoked`` are told
    the partitions this worker takes and gives up (``revoked`` after the
    batch in flight and the backlog are done and committed).
    """

    def __init__(
        self,
        app: faust.App,
        pipeline: Pipeline,
        *,
        topic: str,
        name: str,
        handle: BatchHandler,
        backlog: Backlog,
        assigned: Callable[[Sequence[int]], Any] | None = None,
        revoked: Callable[[Sequence[int]], Any] | None = None,
    ) -> None:
        """Prepare; nothing connects before :meth:`start`."""
        self.app = app
        self.pipeline = pipeline
        self.topic = topic
        self.name = name
        self.handle = handle
        self.backlog = backlog
        self.on_assigned = assigned
        self.on_revoked = revoked
        self.tracker: CommitTracker[TopicPartition] = CommitTracker()
        #: held while a batch is handled, and by a revoke or a stop
        self.lock = asyncio.Lock()
        self._commit_lock = asyncio.Lock()
        #: offsets whose commit failed, tried again with the next commit
        self._uncommitted: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._joined = False

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        """The aiokafka consumer, once started."""
        return self._consumer

    def _make_consumer(self) -> AIOKafkaConsumer:
        conf = self.app.conf
        settings = self.pipeline.settings
        assert settings.kafka_url is not None
        return AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(settings.kafka_url),
            client_id=f"{conf.broker_client_id}-{self.name}",
            group_id=consumer_group(settings.app_id),
            group_instance_id=settings.instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.score_batch_size,
            max_poll_interval_ms=int((conf.broker_max_poll_interval or 0) * 1000),
            max_partition_fetch_bytes=conf.consumer_max_fetch_size,
            fetch_max_wait_ms=1500,
            request_timeout_ms=int(conf.broker_request_timeout * 1000),
            session_timeout_ms=int(conf.broker_session_timeout * 1000),
            rebalance_timeout_ms=int(conf.broker_rebalance_timeout * 1000),
            heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000),
            metadata_max_age_ms=conf.consumer_metadata_max_age_ms,
            connections_max_idle_ms=conf.consumer_connections_max_idle_ms,
        )

    async def start(self) -> None:
        """Start joining the group, reading and committing, in the background.

        Returns at once: joining waits for the group to settle (up to a
        session timeout when a member left without a word), and the app's
        other services need not wait for it.
        """
        consumer = self._consumer = self._make_consumer()
        consumer.subscribe([self.topic], listener=_Listener(self))
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name=f"{self.name}-consume"),
            loop.create_task(self._commit_often(), name=f"{self.name}-commit"),
        ]

    async def stop(self) -> None:
        """Finish the batch in flight and the backlog, commit, leave the group."""
        self._stopping = True
        if self._consumer is None:
            return
        run, committer = self._tasks or (None, None)
        if run is not None and not self._joined:
            run.cancel()  # still joining: nothing was handed out
        if run is not None:
            with contextlib.suppress(asyncio.CancelledError, ConsumerStoppedError):
                await run
        if committer is not None:
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer
        async with self.lock:
            await self.backlog.join()
            await self.commit()
        await self.backlog.close()
        consumer = self._consumer  # _join may have made a new one
        assert consumer is not None
        await consumer.stop()  # leaves the group: the partitions move at once
        self._joined = False
        self._consumer = None

    async def _run(self) -> None:
        pipeline, name = self.pipeline, self.name
        settings, metrics = pipeline.settings, pipeline.metrics
        delivery = pipeline.delivery
        topics = (self.topic,)
        pending = metrics.stage_pending_records.labels(stage=name)
        progress = metrics.stage_last_progress.labels(stage=name)
        progress.set(time.time())
        timeout_ms = int(settings.score_batch_seconds * 1000)
        batch_size = settings.score_batch_size
        try:
            consumer = await self._join()
            self._joined = True
            while not self._stopping:
                delivery.waiting(topics, time.monotonic())
                fetched = await fair_batch(consumer, timeout_ms, batch_size)
                if not fetched:
                    continue
                delivery.busy(topics)
                async with self.lock:
                    records = self._records(fetched)
                    if not records:
                        continue
                    pending.set(len(records))
                    # InFlight is shaped like a Faust event (see its class)
                    events = cast(list[faust.EventT], records)
                    await handle_batch(pipeline, name, events, self.handle)
                    # before the batch lets its records go: see Backlog.settle
                    self.backlog.settle(events)
                    for record in records:
                        record.ack()
                pending.set(0)
                progress.set(time.time())
        except ConsumerStoppedError:
            if not self._stopping:
                exit_for_restart(f"{self.name}: its consumer stopped")
        except Exception as exc:  # noqa: BLE001 - a bug, or the consumer failing
            # handle_batch never raises: this is getmany (or a bug). Left
            # alone the worker would look healthy and consume nothing.
            log.exception("%s: the consume loop failed", self.name)
            exit_for_restart(f"{self.name}: {describe_error(exc)}")

    async def _join(self) -> AIOKafkaConsumer:
        """Start the consumer (it returns once the group assigned partitions).

        A broker that cannot be reached is tried again, with backoff, for as
        long as it takes: a worker started before Kafka waits for it.
        """
        delay = backoff_delays(1.0, 30.0)
        attempt = 0
        adopted = False
        while True:
            consumer = self._consumer
            assert consumer is not None
            try:
                if not adopted:
                    await self._adopt_faust_offsets()
                    adopted = True
                await consumer.start()
                return consumer
            except KafkaConnectionError as exc:
                wait = delay(attempt)
                attempt += 1
                log.warning(
                    "%s: Kafka not reachable (%s); trying again in %.0f s",
                    self.name,
                    describe_error(exc),
                    wait,
                )
                await consumer.stop()
                await asyncio.sleep(wait)
                fresh = self._consumer = self._make_consumer()
                fresh.subscribe([self.topic], listener=_Listener(self))

    async def _adopt_faust_offsets(self) -> None:
        """See :func:`adopt_faust_offsets`; a failure only costs a re-read."""
        settings = self.pipeline.settings
        try:
            adopted = await adopt_faust_offsets(
                settings.kafka_url or "", settings.app_id, self.topic
            )
        except KafkaConnectionError:
            raise  # Kafka not up yet: tried again with the start
        except Exception as exc:  # noqa: BLE001 - then read from the start
            log.warning(
                "%s: could not adopt the Faust group's offsets (%s); partitions "
                "this group never committed are read from their start",
                self.name,
                describe_error(exc),
            )
            return
        if adopted:
            log.info(
                "%s: %s adopted the offsets the Faust group %s committed for %s: %s",
                self.name,
                consumer_group(settings.app_id),
                settings.app_id,
                self.topic,
                adopted,
            )

    def _records(self, fetched: dict[TopicPartition, list[Any]]) -> list[InFlight]:
        """Wrap fetched records of partitions still assigned; note them handed out."""
        assert self._consumer is not None
        assigned = self._consumer.assignment()
        records = [
            InFlight(
                tp,
                record.offset,
                record.value,
                key=record.key,
                timestamp=record.timestamp / 1000 if record.timestamp else None,
            )
            for tp, batch in fetched.items()
            if tp in assigned
            for record in batch
        ]
        self.tracker.handed(records)
        return records

    async def commit(self) -> None:
        """Commit every assigned partition's records that are done.

        A commit that fails is logged and tried again with the next one: the
        records stay done, and at worst they are read again after a crash.
        """
        consumer = self._consumer
        if consumer is None:
            return
        async with self._commit_lock:
            offsets = {**self._uncommitted, **self.tracker.committable()}
            self._uncommitted = {}
            assigned = consumer.assignment()
            offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
            if not offsets:
                return
            try:
                await consumer.commit(
                    {
                        tp: OffsetAndMetadata(offset, "")
                        for tp, offset in offsets.items()
                    }
                )
            except Exception as exc:  # noqa: BLE001 - tried again next time
                self._uncommitted = offsets
                log.warning(
                    "%s: committing offsets failed (%s); trying again with the "
                    "next commit",
                    self.name,
                    describe_error(exc),
                )

    async def _commit_often(self) -> None:
        """Commit what is done every ``broker_commit_interval`` (as Faust does).

        Not after every batch: a commit is a round trip to the broker, and
        what a crash costs is only reading again the records done since the
        last one (every effect is idempotent).
        """
        interval = float(self.app.conf.broker_commit_interval)
        while not self._stopping:
            await asyncio.sleep(interval)
            await self.commit()

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        mine = [tp for tp in revoked if tp.topic == self.topic]
        if not mine:
            return
        async with self.lock:  # the batch in flight finishes first
            try:
                await self.backlog.join()
            except RuntimeError:
                log.exception("%s: the backlog stopped during a revoke", self.name)
            await self.commit()
            self.tracker.forget(mine)
            self._uncommitted = {}
            if self.on_revoked is not None:
                await _maybe_await(self.on_revoked([tp.partition for tp in mine]))

    async def _assigned(self, assigned: set[TopicPartition]) -> None:
        mine = [tp for tp in assigned if tp.topic == self.topic]
        # read again from the committed offsets: forget what was handed out
        self.tracker.forget(mine)
        if self.on_assigned is not None:
            await _maybe_await(self.on_assigned([tp.partition for tp in mine]))

    async def lag(self) -> int | None:
        """Return the records behind the high watermarks, over assigned partitions."""
        consumer = self._consumer
        if consumer is None:
            return None
        total = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await consumer.position(tp)
            total += max(highwater - position, 0)
        return total

    def highwater(self, partition: int) -> int | None:
        """Return the offset the next record of ``partition`` will get, if known.

        None before the first fetch, and while the loop is not waiting for
        records (handling a batch, or held by a full index backlog): the
        consumer does not fetch a partition whose fetched records are not
        consumed, so its high watermark goes stale. Under Faust that was
        seen to equal the agent's position while posts kept arriving: the
        partition passed for caught up, its window was closed as idle, and
        the rest of that window's posts came late and went uncounted.
        """
        consumer = self._consumer
        if consumer is None or not self.pipeline.delivery.is_waiting(self.topic):
            return None
        value = consumer.highwater(TopicPartition(self.topic, partition))
        return None if value is None else int(value)


async def fair_batch(
    consumer: AIOKafkaConsumer, timeout_ms: int, batch_size: int
) -> dict[TopicPartition, list[Any]]:
    """Return up to ``batch_size`` fetched records, shared among the partitions.

    ``getmany`` alone drains the first partition's fetched records before it
    looks at the next, and a fetch holds up to ``max_partition_fetch_bytes``
    (thousands of posts): one partition would run hours ahead of the others
    in event time, its windows closed and merged while the others' posts
    are still to come. Each assigned partition gets an equal share of the
    batch instead (as Faust's round robin did); when none has records
    fetched, this waits up to ``timeout_ms`` for the first that does.
    """
    assigned = sorted(consumer.assignment())
    share = max(1, batch_size // max(1, len(assigned)))
    fetched: dict[TopicPartition, list[Any]] = {}
    for tp in assigned:
        fetched.update(await consumer.getmany(tp, timeout_ms=0, max_records=share))
    if fetched:
        return fetched
    return await consumer.getmany(timeout_ms=timeout_ms, max_records=share)


async def adopt_faust_offsets(
    kafka_url: str, app_id: str, topic: str
) -> dict[int, int]:
    """Give the hot path's group the Faust group's offsets of ``topic``, once.

    Before this consumer, ``posts`` was read by the Faust app's own group
    (``app_id``). A worker upgraded in place would otherwise read the topic
    again from its start: harmless (every effect is idempotent), but hours
    of scoring on a large topic. Only a group that has committed nothing
    for ``topic`` adopts anything, and only partitions the old group
    committed; done before the consumer joins, so that nothing is fetched
    from the start meanwhile. A group that already has members refuses the
    commit: one of them adopted the offsets first.

    Returns:
        Partition -> the offset adopted (empty if nothing was).

    """
    bootstrap = bootstrap_servers(kafka_url)
    new = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=consumer_group(app_id),
        enable_auto_commit=False,
    )
    old = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=app_id, enable_auto_commit=False
    )
    await new.start()
    try:
        await old.start()
        try:
            await new.topics()  # metadata of every topic, fetched now
            partitions = [
                TopicPartition(topic, p)
                for p in sorted(new.partitions_for_topic(topic) or ())
            ]
            for tp in partitions:
                if await new.committed(tp) is not None:
                    return {}
            found: dict[TopicPartition, int] = {}
            for tp in partitions:
                offset = await old.committed(tp)
                if offset is not None and offset >= 0:
                    found[tp] = offset
        finally:
            await old.stop()
        if not found:
            return {}
        new.assign(list(found))
        await new.commit(found)
    finally:
        await new.stop()
    return {tp.partition: offset for tp, offset in found.items()}


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BatchConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner._revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.owner._assigned(assigned)
