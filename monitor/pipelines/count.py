"""The count and detect stages: scored-posts -> window partials -> bursts, triggers.

The count stage gets every batch of ``scored-posts`` from the index stage's
agent (``index_and_count``: one read for both) and keeps each partition's
open windows (:class:`~monitor.analysis.windows.PartitionLedger`). Closed
windows leave as partials on ``window-partials`` (one partition).
``merge_windows`` reads that topic, sums the partials of all partitions
(:class:`~monitor.analysis.windows.WindowMerger`), runs the detectors and the
rules on every complete window (:class:`~monitor.analysis.detection.WindowEvaluator`)
and writes window counts and bursts to Elasticsearch, bursts to ``bursts``
and triggers to ``triggers``.

Both stages keep their state in a state log (a compacted topic, ``count-state``
and ``merge-state``): one write per window touched per batch (not per post),
to the partition of the input it came from, awaited before the batch is
acknowledged. When a stage first sees a partition (start, restart,
rebalance) it reads that partition of its log back and rebuilds its state;
records already applied are recognised by offset (and redelivered posts by
id) and skipped. A Faust table would do the same, but Faust's table recovery
stalled the consumer after a restart on the local server, and a table cannot
be written from ``take_events`` batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from monitor.analysis.detection import (
    WindowEvaluator,
    WindowReport,
    amended_points,
    point_verdicts,
    trigger_to_dict,
)
from monitor.analysis.tickets import AlertRule
from monitor.analysis.windows import (
    DROPPED,
    PartitionLedger,
    PostFacts,
    WindowAggregate,
    WindowMerger,
)
from monitor.pipelines.batches import Pipeline, register_batch_agent
from monitor.records import utc_now
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch.windows import (
    burst_body,
    burst_document,
    count_document,
)
from monitor.sinks.retry import until_written
from monitor.topics import bootstrap_servers

log = logging.getLogger(__name__)

COUNT_STAGE = "count"
MERGE_STAGE = "merge"
#: Timers check idle partitions and overdue windows this often (seconds).
TICK_SECONDS = 1.0


class StateLog:
    """A keyed log of JSON state on a Kafka topic, one partition per input partition.

    Keys are ``"<partition>:..."``; a ``None`` value deletes (a tombstone, so
    the topic can be compacted). Writes go to the partition given, from batch
    handlers, and are awaited before the batch is acknowledged. Restoring reads
    the partition from the beginning with a plain consumer (no group), keeping
    each key's latest value. The stages read it when they first see a partition,
    so a restart or a rebalance rebuilds their state before they go on.
    """

    def __init__(self, topic: faust.TopicT, kafka_url: str) -> None:
        """Log to ``topic`` (raw keys and values) on the cluster at ``kafka_url``."""
        self.topic = topic
        self.kafka_url = kafka_url

    async def entries(self, partition: int) -> list[tuple[str, Any]]:
        """Return this partition's entries (latest value per key), decoded."""
        tp = TopicPartition(self.topic.get_topic_name(), partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(self.kafka_url),
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
        return [
            (key.decode("utf-8"), orjson.loads(value))
            for key, value in latest.items()
            if value is not None
        ]

    async def write_in_order(
        self,
        partition: int,
        writes: Mapping[str, Any | None],
        commits: Callable[[str], bool],
    ) -> None:
        """Log ``writes`` in three acknowledged steps: values, commits, deletes.

        A restore trusts an entry for which ``commits(key)`` is true (the
        ledger's meta, the merge's progress) only as far as everything it
        covers: so those go after every other value has landed, and the
        deletes of what they replace go last. (Without idempotence the
        producer may deliver a later record after an earlier one failed.)
        """
        values = {k: v for k, v in writes.items() if v is not None and not commits(k)}
        marks = {k: v for k, v in writes.items() if v is not None and commits(k)}
        deletes = {k: v for k, v in writes.items() if v is None}
        for step in (values, marks, deletes):
            if step:
                await asyncio.gather(*(await self.write(partition, step)))

    async def write(
        self, partition: int, writes: Mapping[str, Any | None]
    ) -> list[Awaitable[Any]]:
        """Log ``key -> value`` (``None`` deletes); return the deliveries."""
        futures = []
        for key, value in writes.items():
            raw = None if value is None else orjson.dumps(value)
            futures.append(
                await self.topic.send(
                    key=key.encode("utf-8"), value=raw, partition=partition
                )
            )
        return futures


def _ledger_commit(key: str) -> bool:
    """Return True for the ledger's meta entry: what a restore trusts last."""
    return key.endswith(":meta")


def _merge_commit(key: str) -> bool:
    """Return True for the merge's progress entry (``0:merger:``)."""
    return key.split(":")[1] == "merger"


class CountStage:
    """Per-partition window counting (stage 1)."""

    NAME = COUNT_STAGE

    def __init__(
        self,
        pipeline: Pipeline,
        state: StateLog,
        highwater: Callable[[int], int | None] | None = None,
    ) -> None:
        """Start with no partition restored.

        ``highwater(partition)`` returns the offset the next record of that
        ``scored-posts`` partition will get (None if not known yet): a
        partition is only idle once this worker has read up to it.
        """
        self.pipeline = pipeline
        self.state = state
        self.highwater = highwater
        #: partition -> offset after the last record this worker handled
        self.position: dict[int, int] = {}
        self.ledgers: dict[int, PartitionLedger] = {}
        self.last_seen: dict[int, float] = {}
        #: ``scored-posts`` partitions assigned to this worker
        self.owned: set[int] = set()
        #: partitions taken away and not given back: Faust may still hand
        #: over events of theirs it had buffered; their new owner counts them
        self.revoked: set[int] = set()
        #: partition -> whether its last heartbeat said it had open windows
        self.active: dict[int, bool] = {}
        #: partition -> monotonic time its read position last moved (or it
        #: was restored): a partition stuck on a batch stops saying "active"
        self.advanced: dict[int, float] = {}
        self.lock = asyncio.Lock()

    async def ledger(self, partition: int) -> PartitionLedger:
        """Return the partition's ledger, rebuilt from the state log on first use."""
        ledger = self.ledgers.get(partition)
        if ledger is None:
            settings = self.pipeline.settings
            ledger = PartitionLedger.restore(
                partition,
                settings.window_seconds,
                settings.window_grace_seconds,
                await self.state.entries(partition),
                dedup_horizon=settings.dedup_horizon_seconds,
                dedup_max_ids=settings.dedup_max_ids,
            )
            if ledger.unsent:
                # Partials of the last close, logged but perhaps never sent
                # (a crash, or a send that failed): the merge ignores copies.
                await asyncio.gather(*(await self._send(partition, ledger.unsent)))
                ledger.unsent = []
            self.ledgers[partition] = ledger
            self.last_seen[partition] = self.advanced[partition] = time.monotonic()
            self.position[partition] = max(
                self.position.get(partition, 0), ledger.applied_offset + 1
            )
            log.info(
                "count: partition %d restored (offset %d, %d open windows)",
                partition,
                ledger.applied_offset,
                len(ledger.windows.open),
            )
        return ledger

    def assign(self, partitions: Iterable[int]) -> None:
        """Note partitions assigned to this worker (restored on the next tick)."""
        for partition in partitions:
            self.owned.add(partition)
            self.revoked.discard(partition)

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop partitions this worker no longer owns (rebuilt if they return)."""
        for partition in partitions:
            self.revoked.add(partition)
            self.owned.discard(partition)
            self.ledgers.pop(partition, None)
            self.last_seen.pop(partition, None)
            self.active.pop(partition, None)
            self.position.pop(partition, None)
            self.advanced.pop(partition, None)

    def _drop(self, partitions: Iterable[int]) -> None:
        """Forget in-memory state whose writes may not all have landed.

        The next use rebuilds it from the state log, which holds exactly what
        was written: memory never runs ahead of the log after a failure.
        """
        for partition in partitions:
            if self.ledgers.pop(partition, None) is not None:
                log.warning(
                    "count: partition %d rebuilt from its state log after a "
                    "failed write",
                    partition,
                )

    def caught_up(self, partition: int) -> bool:
        """Return True once this worker has handled every record so far."""
        if self.highwater is None:
            return True
        highwater = self.highwater(partition)
        return highwater is not None and highwater <= self.position.get(partition, 0)

    async def count(
        self,
        pipeline: Pipeline,
        decoded: Sequence[tuple[faust.EventT, Mapping[str, Any] | None]],
    ) -> set[tuple[int, int]]:
        """Count a batch of decoded scored posts; send the windows it closes.

        ``None`` stands for a record that could not be decoded (and was
        dead-lettered): it is not counted, but this worker has read past it.

        Returns:
            ``(partition, offset)`` of the records that are later copies of a
            post id already counted: the index stage skips them too, so the
            first version wins everywhere.

        Raises:
            Exception: Whatever a write raised. The partitions of the batch
                are then rebuilt from their state log before the batch is
                handled again, so nothing the failed writes carried is lost.

        """
        started = time.perf_counter()
        by_partition: dict[int, list[tuple[int, PostFacts]]] = defaultdict(list)
        left: set[int] = set()
        duplicates: set[tuple[int, int]] = set()
        #: partition -> offset after its last record in this batch
        read: dict[int, int] = {}
        for event, data in decoded:
            message = event.message
            if message.partition in self.revoked:
                # Counting it here too would send a second, partial share of
                # its window beside the new owner's.
                left.add(message.partition)
                continue
            read[message.partition] = max(
                read.get(message.partition, 0), message.offset + 1
            )
            if data is None:
                continue
            try:
                facts = PostFacts.from_scored(data)
            except Exception as exc:  # noqa: BLE001 - any unusable record
                await pipeline.dead_letter_event(
                    COUNT_STAGE, event, f"not a scored post: {exc}"
                )
                continue
            by_partition[message.partition].append((message.offset, facts))
        async with self.lock:
            try:
                for partition, posts in by_partition.items():
                    if partition in self.revoked:  # revoked during this batch
                        left.add(partition)
                        continue
                    duplicates.update(
                        (partition, offset)
                        for offset in await self._apply(partition, posts)
                    )
            except BaseException:
                self._drop(by_partition)
                raise
            # Read past only once counted: until then the timer must not
            # take the partition for caught up (and idle-close its windows).
            now = time.monotonic()
            for partition, position in read.items():
                if partition in self.revoked:
                    continue
                if position > self.position.get(partition, 0):
                    self.position[partition] = position
                    self.advanced[partition] = now
        for partition in sorted(left):
            log.info(
                "count: records of revoked partition %d left to its owner", partition
            )
        pipeline.metrics.stage_seconds.labels(stage=COUNT_STAGE).observe(
            time.perf_counter() - started
        )
        return duplicates

    async def _apply(
        self, partition: int, posts: Sequence[tuple[int, PostFacts]]
    ) -> list[int]:
        """Count posts of one partition, log the state, send what closed.

        Memory (the ledger) changes before the writes; a caller whose writes
        fail must :meth:`_drop` the partition so the retry rebuilds it.
        Returns the offsets of duplicate copies.
        """
        metrics = self.pipeline.metrics
        outcome = (await self.ledger(partition)).apply(posts)
        self.last_seen[partition] = time.monotonic()
        if outcome.late:
            metrics.posts_late.inc(outcome.late)
        if outcome.duplicates:
            metrics.posts_duplicate.inc(outcome.duplicates)
        if outcome.dedup_forgotten_early:
            metrics.dedup_forgotten_early.inc(outcome.dedup_forgotten_early)
        # State first: a window's partial is logged before it is sent.
        await self.state.write_in_order(partition, outcome.writes, _ledger_commit)
        deliveries = await self._send(partition, outcome.closed)
        if not self.active.get(partition):
            # Tell the merge at once that this partition has windows
            # open again, so that it waits for them.
            deliveries += await self._heartbeat(partition)
        await asyncio.gather(*deliveries)
        return list(outcome.duplicate_offsets)

    async def tick(self) -> None:
        """Restore owned partitions, close idle ones' windows, send heartbeats.

        Every owned partition is restored here even without new posts, so that
        windows left open by a crash are still closed. Each tick tells the
        merge, per partition, whether it still has open windows: the merge
        waits for an active partition however long it takes, and not for an
        idle one.
        """
        async with self.lock:
            for partition in sorted(self.owned - set(self.ledgers)):
                try:
                    await self.ledger(partition)
                except Exception:  # noqa: BLE001 - one partition's, retried next tick
                    log.exception("count: restoring partition %d failed", partition)
            for partition in list(self.ledgers):
                # One partition's failure must not silence the others.
                try:
                    await self._tick_partition(partition)
                except Exception:  # noqa: BLE001 - retried next tick
                    self._drop([partition])
                    log.exception("count: partition %d tick failed", partition)

    async def _tick_partition(self, partition: int) -> None:
        ledger = self.ledgers[partition]
        now = time.monotonic()
        if (
            ledger.windows.open
            and now - self.last_seen.get(partition, now)
            >= self.pipeline.settings.idle_close_seconds
            # Quiet only because its records have not reached this
            # worker yet (a restart, a rebalance): not idle.
            and self.caught_up(partition)
        ):
            outcome = ledger.flush()
            if outcome.dedup_forgotten_early:
                self.pipeline.metrics.dedup_forgotten_early.inc(
                    outcome.dedup_forgotten_early
                )
            # State first: a partial is logged before it is sent.
            await self.state.write_in_order(partition, outcome.writes, _ledger_commit)
            await asyncio.gather(*(await self._send(partition, outcome.closed)))
        await asyncio.gather(*(await self._heartbeat(partition)))

    async def _heartbeat(self, partition: int) -> list[Awaitable[Any]]:
        # A partition with records still on their way (a restore, a
        # rebalance) is not idle even with no window open yet.
        pending = bool(self.ledgers[partition].windows.open) or not self.caught_up(
            partition
        )
        stalled = (
            time.monotonic() - self.advanced.get(partition, 0.0)
            >= self.pipeline.settings.window_wait_seconds
        )
        if pending and stalled:
            # Stuck with work to do (its batch keeps failing, or waits out an
            # outage): say nothing. Silence is what the merge gives up on, after
            # MONITOR_WINDOW_WAIT_SECONDS: it completes windows without this
            # partition, marked incomplete, and its partials amend them when
            # it moves again. ("Idle" would pass the windows as complete.)
            self.active[partition] = False
            return []
        active = pending
        self.active[partition] = active
        body = {"partition": partition, "heartbeat": True, "active": active}
        return [
            await self.pipeline.topics.window_partials.send(
                key=f"heartbeat:{partition}".encode(),
                value=orjson.dumps(body),
                partition=0,
            )
        ]

    async def _send(
        self, partition: int, closed: Sequence[WindowAggregate]
    ) -> list[Awaitable[Any]]:
        topic = self.pipeline.topics.window_partials
        futures = []
        for window in closed:
            body = {"partition": partition, "window": window.to_dict(bounded=True)}
            futures.append(
                await topic.send(
                    key=f"{window.start}:{partition}".encode(),
                    value=orjson.dumps(body),
                    partition=0,
                )
            )
        self.pipeline.metrics.windows_closed.inc(len(closed))
        return futures


class MergeStage:
    """Merges partials, detects bursts and checks rules (stage 2, one partition).

    State-log keys (partition 0 of ``merge-state``): ``0:merger:`` (progress),
    ``0:eval:<series>`` (detector snapshots), ``0:pending:<start>:<partition>``
    (a partial of a window not yet emitted, or of one still amendable) and
    ``0:emitted:<start>`` (an emitted window some partition did not
    contribute to: who did, and the detectors' verdicts on it).
    """

    PARTITION = 0
    NAME = MERGE_STAGE

    def __init__(
        self,
        pipeline: Pipeline,
        state: StateLog,
        rules: Callable[[], Sequence[AlertRule]],
        topics: Callable[[], Sequence[str]],
    ) -> None:
        """Start unrestored; ``rules``/``topics`` return the current rule set."""
        self.pipeline = pipeline
        self.state = state
        self.rules = rules
        self.topics = topics
        self.lock = asyncio.Lock()
        self.merger: WindowMerger | None = None
        self.evaluator: WindowEvaluator | None = None
        self.saved_keys: set[str] = set()
        #: True once the partition was taken away (until it is given back):
        #: events Faust had buffered are left to the new owner
        self.revoked = False
        #: window start -> {"complete": bool, "verdicts": point_verdicts(...)}
        #: of an emitted window, while it is amendable
        self.emitted: dict[int, dict[str, Any]] = {}
        #: the merger's skipped gap windows already counted in the metric
        self.gap_windows_reported = 0

    async def _restore(self) -> tuple[WindowMerger, WindowEvaluator]:
        if self.merger is not None and self.evaluator is not None:
            return self.merger, self.evaluator
        settings = self.pipeline.settings
        merger = WindowMerger(
            settings.topic_partitions,
            settings.window_seconds,
            settings.window_wait_seconds,
        )
        evaluator = WindowEvaluator(settings.window_seconds)
        now = time.monotonic()
        entries = await self.state.entries(self.PARTITION)
        detector_entries = {}
        emitted: dict[int, dict[str, Any]] = {}
        for key, value in entries:
            self.saved_keys.add(key)
            _, kind, rest = key.split(":", 2)
            if kind == "merger":
                merger.emitted_through = value["emitted_through"]
                merger.reported.update(
                    {int(p): int(start) for p, start in value["reported"].items()}
                )
            elif kind == "eval":
                detector_entries[rest] = value
            elif kind == "emitted":
                emitted[int(rest)] = value
        partials: dict[int, list[WindowAggregate]] = defaultdict(list)
        for key, value in entries:
            _, kind, rest = key.split(":", 2)
            if kind == "pending":
                start, partition = (int(part) for part in rest.split(":"))
                partial = WindowAggregate.from_dict(value)
                if start in emitted:
                    partials[start].append(partial)
                else:
                    merger.absorb(partition, partial, now)
        for start, value in emitted.items():
            merger.restore_emitted(start, value["partitions"], partials[start])
            self.emitted[start] = {
                "complete": value["complete"],
                "verdicts": value["verdicts"],
            }
        evaluator.restore(detector_entries)
        log.info(
            "merge: restored (%d pending windows, emitted through %s, "
            "%d amendable, %d series)",
            len(merger.pending),
            merger.emitted_through,
            len(merger.amendable),
            len(evaluator.detectors),
        )
        self.merger, self.evaluator = merger, evaluator
        return merger, evaluator

    def assign(self) -> None:
        """Take the partition (again): its records are this worker's to merge."""
        self.revoked = False

    def forget(self) -> None:
        """Drop the state (the partition moved to another worker)."""
        self.revoked = True
        self._drop()

    def _drop(self) -> None:
        """Forget the in-memory state; the next use rebuilds it from the log."""
        self.merger = self.evaluator = None
        self.saved_keys = set()
        self.emitted = {}
        self.gap_windows_reported = 0

    async def handle(self, pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
        """Merge a batch of partials and heartbeats; handle what completes.

        The merger, the detectors and the verdicts change in memory before
        the writes that make them durable (window documents, bursts,
        triggers, then the state log). If any of those raises, the state is
        dropped and rebuilt from the log before the batch is handled again,
        so a window whose outputs did not all go out is completed again and
        sends them, instead of being taken for done.
        """
        async with self.lock:
            if self.revoked:
                log.info(
                    "merge: %d records of a revoked partition skipped", len(events)
                )
                return
            try:
                await self._handle(pipeline, events)
            except BaseException:
                self._drop()
                raise

    async def _handle(
        self, pipeline: Pipeline, events: Sequence[faust.EventT]
    ) -> None:
        merger, _ = await self._restore()
        now = time.monotonic()
        writes: dict[str, Any] = {}
        completed: list[tuple[WindowAggregate, bool]] = []
        amended: dict[int, WindowAggregate] = {}
        for event in events:
            try:
                body = orjson.loads(event.value)
                partition = int(body["partition"])
                if body.get("heartbeat"):
                    completed += merger.heartbeat(
                        partition, bool(body["active"]), now
                    )
                    continue
                partial = WindowAggregate.from_dict(body["window"])
            except Exception as exc:  # noqa: BLE001 - any undecodable record
                await pipeline.dead_letter_event(
                    MERGE_STAGE, event, f"not a window partial: {exc}"
                )
                continue
            outcome = merger.add(partition, partial, now)
            log.debug(
                "partial %s from partition %d (%d posts): %s",
                partial.start,
                partition,
                partial.posts,
                outcome.status,
            )
            if outcome.accepted:
                key = f"0:pending:{partial.start}:{partition}"
                writes[key] = partial.to_dict(bounded=False)
            if outcome.amended is not None and partial.posts:
                # (an empty share changes no count: nothing to rewrite)
                amended[partial.start] = outcome.amended
            elif outcome.status == DROPPED:
                pipeline.metrics.partials_dropped.inc()
                log.error(
                    "partial of window %s from partition %d arrived after the "
                    "window was emitted and can no longer be corrected: "
                    "%d posts, %d negative not in its counts",
                    partial.start,
                    partition,
                    partial.posts,
                    partial.negative,
                )
            completed += outcome.completed
        await self._finish(completed, writes, amended)

    async def tick(self) -> None:
        """Complete windows whose missing partitions fell silent."""
        async with self.lock:
            if self.merger is None:
                return
            try:
                completed = self.merger.completed(time.monotonic())
                if completed:
                    await self._finish(completed, {}, {})
            except BaseException:
                self._drop()
                raise

    async def _finish(
        self,
        completed: list[tuple[WindowAggregate, bool]],
        writes: dict[str, Any],
        amended: Mapping[int, WindowAggregate],
    ) -> None:
        merger, evaluator = await self._restore()
        pipeline = self.pipeline
        rules = list(self.rules())
        topics = list(self.topics())
        skipped = merger.skipped_gap_windows - self.gap_windows_reported
        if skipped:
            log.warning(
                "merge: a quiet gap of more than %d windows; its %d oldest empty "
                "windows were not emitted one by one",
                merger.max_gap_windows,
                skipped,
            )
            pipeline.metrics.window_gaps_skipped.inc(skipped)
            self.gap_windows_reported = merger.skipped_gap_windows
        for window, complete in completed:
            log.info(
                "window %s complete%s: %d posts, %d negative",
                window.start,
                "" if complete else " (a partition given up on)",
                window.posts,
                window.negative,
            )
            report = evaluator.evaluate(window, rules, topics, complete)
            await self._publish(report)
            if not complete:
                pipeline.metrics.windows_incomplete.inc()
            if window.start in merger.amendable:
                self.emitted[window.start] = {
                    "complete": complete,
                    "verdicts": point_verdicts(report),
                }
        for _, window in sorted(amended.items()):
            await self._amend(window)
        # Keep what may still be amended; delete the rest of what was emitted.
        through = merger.emitted_through
        for start, info in list(self.emitted.items()):
            record = merger.amendable.get(start)
            if record is None:
                del self.emitted[start]
                continue
            writes[f"0:emitted:{start}"] = {
                "partitions": sorted(record.partitions),
                **info,
            }
        for key in [*self.saved_keys, *writes]:
            _, kind, rest = key.split(":", 2)
            if kind in ("pending", "emitted") and through is not None:
                start = int(rest.split(":")[0])
                if start <= through and start not in merger.amendable:
                    writes[key] = None
        if completed:
            entries = {f"0:eval:{k}": v for k, v in evaluator.snapshot().items()}
            for key in self.saved_keys:
                if key.startswith("0:eval:") and key not in entries:
                    writes[key] = None
            writes.update(entries)
        writes["0:merger:"] = {
            "emitted_through": merger.emitted_through,
            "reported": {str(p): start for p, start in merger.reported.items()},
        }
        for key, value in writes.items():
            if value is None:
                self.saved_keys.discard(key)
            else:
                self.saved_keys.add(key)
        await self.state.write_in_order(self.PARTITION, writes, _merge_commit)

    async def _amend(self, window: WindowAggregate) -> None:
        """Rewrite the counts of an emitted window a late partial corrected."""
        assert self.merger is not None
        settings = self.pipeline.settings
        info = self.emitted.get(window.start, {})
        # Whole once every partition is in; else as complete as when emitted.
        complete = window.start not in self.merger.amendable or bool(
            info.get("complete")
        )
        log.warning(
            "window %s amended by a late partial: now %d posts, %d negative",
            window.start,
            window.posts,
            window.negative,
        )
        docs = [
            count_document(
                point,
                prefix=settings.index_prefix,
                utc_offset=settings.index_utc_offset,
                complete=complete,
            )
            for point in amended_points(window, info.get("verdicts", {}))
        ]
        await self._write_windows(docs)
        self.pipeline.metrics.windows_amended.inc()

    async def _publish(self, report: WindowReport) -> None:
        pipeline, settings = self.pipeline, self.pipeline.settings
        now = utc_now()
        docs: list[Document] = [
            count_document(
                point,
                prefix=settings.index_prefix,
                utc_offset=settings.index_utc_offset,
                complete=report.complete,
            )
            for point in report.points
            if point.kind != "keyword" or point.observed > 0 or point.anomalous
        ]
        docs += [
            burst_document(burst, prefix=settings.index_prefix, updated_at=now)
            for burst in report.bursts
        ]
        # Documents first (idempotent by id), then the messages: a batch
        # handled again after a failed write sends each trigger once.
        await self._write_windows(docs)
        deliveries = []
        for burst in report.bursts:
            deliveries.append(
                await pipeline.topics.bursts.send(
                    key=burst.series.encode(),
                    value=orjson.dumps(burst_body(burst, now)),
                )
            )
            pipeline.metrics.bursts.labels(kind=burst.kind, phase=burst.phase).inc()
        for trigger in report.triggers:
            deliveries.append(
                await pipeline.topics.triggers.send(
                    key=trigger.fingerprint.encode(),
                    value=orjson.dumps(
                        {"trigger": trigger_to_dict(trigger), "closed_at": now}
                    ),
                    partition=0,
                )
            )
            pipeline.metrics.triggers.labels(kind=trigger.kind).inc()
        await asyncio.gather(*deliveries)
        pipeline.metrics.windows_merged.inc()

    async def _write_windows(self, docs: list[Document]) -> None:
        pipeline, settings = self.pipeline, self.pipeline.settings
        sink = pipeline.windows_sink
        if not docs or sink is None:
            return
        result = await until_written(
            lambda: sink.write(docs),
            initial=settings.es_retry_initial_seconds,
            maximum=settings.es_retry_max_seconds,
            on_retry=lambda exc, wait: pipeline.metrics.sink_retries.labels(
                sink="elasticsearch-windows"
            ).inc(),
            shutdown=pipeline.shutdown,
        )
        if not result.rejected:
            return
        for rejected in result.rejected:
            # Refused for good (a mapping conflict, say): kept as a dead
            # letter with Elasticsearch's reason, so it can be fixed and
            # written again by hand; retrying would never succeed.
            await pipeline.dead_letter(
                stage=MERGE_STAGE,
                reason=f"Elasticsearch refused window document {rejected.doc_id}: "
                f"{rejected.reason}",
                payload=orjson.dumps(
                    {"id": rejected.doc_id, "document": rejected.document},
                    default=str,
                ),
                topic=settings.topic_window_partials,
            )


def register(
    app: faust.App,
    pipeline: Pipeline,
    rules: Callable[[], Sequence[AlertRule]],
    topics: Callable[[], Sequence[str]],
) -> tuple[CountStage, MergeStage]:
    """Add ``merge_windows``, the state logs, timers and partition hooks.

    The count stage has no agent of its own: the index stage's agent hands it
    every batch of ``scored-posts`` (see :func:`monitor.pipelines.index.register`).
    """
    settings = pipeline.settings
    assert settings.kafka_url is not None
    count_state = StateLog(pipeline.topics.count_state, settings.kafka_url)
    merge_state = StateLog(pipeline.topics.merge_state, settings.kafka_url)
    count = CountStage(
        pipeline,
        count_state,
        highwater=lambda partition: app.consumer.highwater(
            TP(settings.topic_scored_posts, partition)
        ),
    )
    merge = MergeStage(pipeline, merge_state, rules, topics)
    register_batch_agent(
        app,
        pipeline,
        topic=pipeline.topics.window_partials,
        name="merge_windows",
        batch_size=100,
        batch_seconds=0.05,
        handle=merge.handle,
    )

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
        count.assign(
            tp.partition for tp in assigned if tp.topic == settings.topic_scored_posts
        )
        if any(tp.topic == settings.topic_window_partials for tp in assigned):
            merge.assign()

    # Faust types connect's receiver as (sender, *args, signal, **kw).
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app: faust.App, revoked: set[Any], **kwargs: Any) -> None:
        # Under the locks: a batch in flight finishes (and logs its state)
        # before the partition's state is dropped.
        async with count.lock:
            count.forget(
                tp.partition
                for tp in revoked
                if tp.topic == settings.topic_scored_posts
            )
        if any(tp.topic == settings.topic_window_partials for tp in revoked):
            async with merge.lock:
                merge.forget()

    return count, merge
