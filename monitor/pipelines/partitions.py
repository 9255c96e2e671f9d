"""Partitions moving between workers, and the timers of the stages that own them.

Every partition hook of the app is here: when Kafka assigns or revokes
partitions, the count stage takes or drops its ``posts`` partitions,
the merge stage its ``window-partials`` partition, the notice sender runs
while this worker owns ``triggers`` (:func:`run_while_owned`), and the gauges
follow. The stage timer
ticks both stages (idle closes, heartbeats, merge timeouts), and the lag
timer measures how far behind each assigned topic is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any, Protocol

import faust
from faust.types import TP

from monitor.pipelines.batches import (
    Pipeline,
    describe_error,
    exit_for_restart,
)
from monitor.pipelines.consumer import BatchConsumer
from monitor.pipelines.count import CountStage
from monitor.pipelines.detect import MergeStage

log = logging.getLogger(__name__)

#: Timers check idle partitions and overdue windows this often (seconds).
TICK_SECONDS = 1.0
#: Consumer lag is measured this often (seconds).
LAG_SECONDS = 5.0


def register(
    app: faust.App,
    pipeline: Pipeline,
    count: CountStage,
    merge: MergeStage,
    hot_path: BatchConsumer,
) -> None:
    """Add the partition hooks and the stage and lag timers to ``app``.

    The ``posts`` partitions are the hot path's consumer's (its own group):
    it tells the count stage itself; its lag is reported here with the rest.
    """
    settings, metrics = pipeline.settings, pipeline.metrics

    @app.timer(TICK_SECONDS)
    async def close_idle_windows() -> None:
        # A timer that raises crashes the worker: log and try again next tick,
        # each stage on its own (a count failure must not stop merge timeouts).
        for stage in (count, merge):
            try:
                await stage.tick()
            except Exception:  # noqa: BLE001 - retried next tick
                log.exception("%s tick failed; retrying next tick", stage.NAME)

    # Faust types connect's receiver as (sender, *args, signal, **kw).
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(app: faust.App, assigned: set[Any], **kwargs: Any) -> None:
        if any(tp.topic == settings.topic_window_partials for tp in assigned):
            merge.assign()
        per_topic: dict[str, int] = defaultdict(int)
        for tp in assigned:
            per_topic[tp.topic] += 1
        for topic, owned in per_topic.items():
            metrics.assigned_partitions.labels(topic=topic).set(owned)

    # Faust types connect's receiver as (sender, *args, signal, **kw).
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app: faust.App, revoked: set[Any], **kwargs: Any) -> None:
        for tp in revoked:
            metrics.assigned_partitions.labels(topic=tp.topic).set(0)
        # Under the lock: a batch in flight finishes (and logs its state)
        # before the partition's state is dropped.
        if any(tp.topic == settings.topic_window_partials for tp in revoked):
            async with merge.lock:
                merge.forget()

    reported: set[str] = set()

    @app.timer(LAG_SECONDS)
    async def report_consumer_lag() -> None:
        for consumer in (_faust_consumer(app), hot_path.consumer):
            error = coordination_error(consumer)
            if error is not None and not app.should_stop:
                exit_for_restart(
                    "the Kafka consumer's group coordination stopped "
                    f"({describe_error(error)}): it can no longer consume or commit"
                )
        # A timer that raises crashes the worker: this one only logs.
        try:
            consumer = app.consumer
            lag: dict[str, int] = defaultdict(int)
            positions: dict[TP, int | None] = {}
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)  # None until the first fetch
                position = positions[tp] = await consumer.position(tp)
                if highwater is not None and position is not None:
                    lag[tp.topic] += max(highwater - position, 0)
            hot_lag = await hot_path.lag()
            if hot_lag is not None:
                lag[hot_path.topic] += hot_lag
            for topic in reported - set(lag):
                metrics.consumer_lag.labels(topic=topic).set(0)  # no longer assigned
            for topic, value in lag.items():
                metrics.consumer_lag.labels(topic=topic).set(value)
            reported.update(lag)
            if not app.rebalancing:
                await rewind_undelivered(app, pipeline, positions)
        except Exception:  # noqa: BLE001 - e.g. a partition revoked mid-loop
            log.debug("consumer lag not measured this time", exc_info=True)


def _faust_consumer(app: faust.App) -> Any:
    """Return the aiokafka consumer under Faust's, or None before it exists."""
    thread = getattr(app.consumer, "_thread", None)
    return getattr(thread, "_consumer", None)


def coordination_error(consumer: Any) -> BaseException | None:
    """Return the error that ended the consumer's group coordination, if any.

    aiokafka runs the group protocol (joins, heartbeats, commits) in one task;
    if that task dies (seen: a SyncGroup answer with an empty assignment that
    it could not decode), the consumer fetches and commits nothing more,
    while the process stays up and looks healthy. None while the task runs,
    or if it ended without an error (a stop).
    """
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_coordination_task", None)
    if not isinstance(task, asyncio.Future) or not task.done() or task.cancelled():
        return None
    return task.exception()


async def rewind_undelivered(
    app: faust.App, pipeline: Pipeline, positions: dict[TP, int | None]
) -> None:
    """Seek back partitions whose records the consumer read and no agent got.

    See :mod:`monitor.stages.delivery`. Faust's own record of committed
    offsets stands in for a partition its agent took nothing from since the
    last rebalance.
    """
    consumer = app.consumer
    committed: dict[TP, int | None] = getattr(consumer, "_committed_offset", {})
    stalled = pipeline.delivery.check(
        app.consumer_generation_id,
        positions,
        {tp: committed.get(tp) for tp in positions},
        time.monotonic(),
    )
    for tp, offset in stalled.items():
        log.warning(
            "%s[%d]: the consumer has read up to offset %s (its position) but its "
            "agent got nothing after %d for %.0f s; seeking back to %d to read "
            "them again",
            tp.topic,
            tp.partition,
            positions[tp],
            offset - 1,
            pipeline.delivery.stall_seconds,
            offset,
        )
        pipeline.metrics.consumer_rewinds.labels(topic=tp.topic).inc()
        await consumer.seek_wait({tp: offset})


class OwnedService(Protocol):
    """Something that runs only while this worker owns a topic's partition."""

    def start(self) -> None:
        """Start (again): the partition is this worker's."""
        ...

    async def stop(self) -> None:
        """Stop: the partition went to another worker."""
        ...


def run_while_owned(app: faust.App, topic: str, service: OwnedService) -> None:
    """Start ``service`` when ``topic``'s partition is assigned here; stop it on revoke.

    For a one-partition topic whose owner must be the only one doing
    something (the notice sender on ``triggers``).
    """

    # Faust types connect's receiver as (sender, *args, signal, **kw).
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def take(app: faust.App, assigned: set[Any], **kwargs: Any) -> None:
        if any(tp.topic == topic for tp in assigned):
            log.info("this worker owns %s: %s runs here", topic, type(service).__name__)
            service.start()

    # Faust types connect's receiver as (sender, *args, signal, **kw).
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def give_up(app: faust.App, revoked: set[Any], **kwargs: Any) -> None:
        if any(tp.topic == topic for tp in revoked):
            await service.stop()
