"""The count stage's host: scored posts -> window-partials.

The count stage gets every batch of ``posts`` from the hot path's agent once
it is scored (``score_index_count``, see :mod:`monitor.pipelines.score`),
and drives the Faust-free
:class:`~monitor.stages.count.WindowCounter`: it restores each partition from
the ``count-state`` log (:class:`~monitor.sinks.statelog.StateLog`) when it
first sees it, logs what a batch changed, sends the partition reports on
``window-partials`` (one partition), and only then moves the read position.
When any write fails the partition is dropped and rebuilt from its log
before the batch is handled again: memory never runs ahead of the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust

from monitor.analysis.windows import PartitionLedger, PostFacts
from monitor.pipelines.batches import Pipeline
from monitor.records import PartitionReport, ScoredPostData
from monitor.stages.count import (
    CountResult,
    CountSettings,
    WindowCounter,
    is_ledger_commit,
)
from monitor.stages.state import StateStore

log = logging.getLogger(__name__)

STAGE = "count"


class CountStage:
    """Feeds :class:`WindowCounter` batches and writes what it returns."""

    NAME = STAGE

    def __init__(
        self,
        pipeline: Pipeline,
        state: StateStore,
        highwater: Callable[[int], int | None] | None = None,
    ) -> None:
        """Start with no partition restored.

        ``highwater(partition)`` returns the offset the next record of that
        ``posts`` partition will get (None if not known yet): a
        partition is only idle once this worker has read up to it. Without
        it every partition counts as caught up.
        """
        self.pipeline = pipeline
        self.state = state
        self.highwater = highwater
        self.counter = WindowCounter(CountSettings.from_settings(pipeline.settings))
        self.lock = asyncio.Lock()

    def assign(self, partitions: Sequence[int] | Any) -> None:
        """Note partitions assigned to this worker (restored on the next tick)."""
        self.counter.assign(partitions)

    def forget(self, partitions: Sequence[int] | Any) -> None:
        """Drop partitions this worker no longer owns (rebuilt if they return)."""
        self.counter.forget(partitions)

    def caught_up(self, partition: int) -> bool:
        """Return True once this worker has handled every record so far."""
        if self.highwater is None:
            return True
        return self.counter.caught_up(partition, self.highwater(partition))

    async def restore(self, partition: int) -> None:
        """Rebuild a partition from its state log unless it is restored."""
        counter = self.counter
        if partition not in counter.partitions:
            counter.assign([partition])
        if counter.partitions[partition].ledger is not None:
            return
        entries = await self.state.entries(partition)
        unsent = counter.restore(partition, entries, time.monotonic())
        if unsent:
            # Partials of the last close, logged but perhaps never sent (a
            # crash, or a send that failed): the merge ignores copies. If
            # this send fails, the partition is restored (and they are sent)
            # again: the next close would delete their log entries.
            try:
                await asyncio.gather(*(await self._send(unsent)))
            except BaseException:
                counter.drop([partition])
                raise
        ledger = counter.ledger(partition)
        log.info(
            "count: partition %d restored (offset %d, %d open windows)",
            partition,
            ledger.applied_offset,
            len(ledger.windows.open),
        )

    async def ledger(self, partition: int) -> PartitionLedger:
        """Return the partition's ledger, rebuilt from the state log on first use."""
        await self.restore(partition)
        return self.counter.ledger(partition)

    def _drop(self, partitions: Sequence[int] | Any) -> None:
        for partition in self.counter.drop(partitions):
            log.warning(
                "count: partition %d rebuilt from its state log after a failed write",
                partition,
            )

    async def count(
        self,
        pipeline: Pipeline,
        decoded: Sequence[tuple[faust.EventT, ScoredPostData | None]],
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
        revoked = self.counter.revoked
        by_partition: dict[int, list[tuple[int, PostFacts]]] = defaultdict(list)
        left: set[int] = set()
        duplicates: set[tuple[int, int]] = set()
        #: partition -> offset after its last record in this batch
        read: dict[int, int] = {}
        for event, data in decoded:
            message = event.message
            if message.partition in revoked:
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
                    STAGE, event, f"not a scored post: {exc}"
                )
                continue
            by_partition[message.partition].append((message.offset, facts))
        async with self.lock:
            try:
                for partition, posts in by_partition.items():
                    if partition in revoked:  # revoked during this batch
                        left.add(partition)
                        continue
                    await self.restore(partition)
                    result = self.counter.count(
                        partition,
                        posts,
                        time.monotonic(),
                        caught_up=self.caught_up(partition),
                    )
                    await self._write(result)
                    duplicates.update(
                        (partition, offset) for offset in result.duplicate_offsets
                    )
            except BaseException:
                self._drop(list(by_partition))
                raise
            now = time.monotonic()
            for partition, position in read.items():
                if partition not in revoked:
                    self.counter.advance(partition, position, now)
        for partition in sorted(left):
            log.info(
                "count: records of revoked partition %d left to its owner", partition
            )
        pipeline.metrics.stage_seconds.labels(stage=STAGE).observe(
            time.perf_counter() - started
        )
        return duplicates

    async def _write(self, result: CountResult) -> None:
        """Log the state first, then send the reports (a partial is logged first)."""
        metrics = self.pipeline.metrics
        if result.late:
            metrics.posts_late.inc(result.late)
        if result.duplicates:
            metrics.posts_duplicate.inc(result.duplicates)
        if result.replayed:
            metrics.posts_replayed.inc(result.replayed)
        if result.dedup_forgotten_early:
            metrics.dedup_forgotten_early.inc(result.dedup_forgotten_early)
        await self.state.write_in_order(
            result.partition, result.writes, is_ledger_commit
        )
        await asyncio.gather(*(await self._send(result.reports)))

    async def tick(self) -> None:
        """Restore owned partitions, close idle ones' windows, send heartbeats.

        Every owned partition is restored here even without new posts, so that
        windows left open by a crash are still closed. Each tick tells the
        merge, per partition, whether it still has open windows: the merge
        waits for an active partition however long it takes, and not for an
        idle one.
        """
        async with self.lock:
            for partition in self.counter.unrestored():
                try:
                    await self.restore(partition)
                except Exception:  # noqa: BLE001 - one partition's, retried next tick
                    log.exception("count: restoring partition %d failed", partition)
            for partition in self.counter.restored():
                # One partition's failure must not silence the others.
                try:
                    await self._tick_partition(partition)
                except Exception:  # noqa: BLE001 - retried next tick
                    self._drop([partition])
                    log.exception("count: partition %d tick failed", partition)

    async def _tick_partition(self, partition: int) -> None:
        counter = self.counter
        closed = counter.idle_close(
            partition, time.monotonic(), caught_up=self.caught_up(partition)
        )
        if closed is not None:
            await self._write(closed)
        heartbeat = counter.heartbeat(
            partition, time.monotonic(), caught_up=self.caught_up(partition)
        )
        if heartbeat is not None:
            await asyncio.gather(*(await self._send([heartbeat])))

    async def _send(self, reports: Sequence[PartitionReport]) -> list[Awaitable[Any]]:
        topic = self.pipeline.topics.window_partials
        futures = [
            await topic.send(key=report.key, value=report.encode(), partition=0)
            for report in reports
        ]
        self.pipeline.metrics.windows_closed.inc(
            sum(1 for report in reports if report.kind == "partial")
        )
        return futures
