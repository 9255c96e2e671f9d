"""The count stage's logic: per-partition buckets, idle closes and heartbeats.

:class:`WindowCounter` keeps one :class:`PartitionCount` per ``posts``
partition it owns and turns batches of posts into what must be logged (the
ledger's state-log writes) and what must then be sent (partition reports:
partials of the buckets closed, snapshots of the open buckets a batch
changed, heartbeats). Posts are counted in short buckets
(``bucket_seconds``, a minute by default); the merge sums them into each
rule's window and the detector's.

**Snapshots** let alerting fire before a bucket closes: after each batch,
each open bucket it counted posts in is reported whole, as of the batch's
last offset (its watched-topic counts only, split by topic under
``snapshot_max_bytes``). They are cumulative, so the merge keeps the one with
the highest offset and never adds them up: a batch handled twice, a restart
or a stale owner cannot count a post twice. It does no I/O and reads no
clock: a host (the Faust agent in :mod:`monitor.pipelines.count`, a test, a
backtest) restores each partition from its state log, calls :meth:`count`,
writes the result's ``writes``, sends its ``reports`` and only then calls
:meth:`advance`. If a write fails the host calls :meth:`drop`, and the next
use rebuilds the partition from its log: memory never runs ahead of the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from monitor.analysis.windows import (
    PartitionLedger,
    PostFacts,
    TopicCounts,
    WindowAggregate,
)
from monitor.records import PartitionReport
from monitor.settings import Settings

#: A snapshot report's topics are split so that each stays under this.
SNAPSHOT_MAX_BYTES = 256 * 1024


def is_ledger_commit(key: str) -> bool:
    """Return True for the ledger's meta entry: what a restore trusts last."""
    return key.endswith(":meta")


@dataclass(frozen=True)
class CountSettings:
    """How the count stage counts (from :class:`~monitor.settings.Settings`).

    Attributes:
        bucket_seconds: Bucket length (what a partial covers).
        grace_seconds: Event time a post may be late and still count.
        idle_close_seconds: Wall-clock quiet after which a caught-up
            partition closes its open windows.
        window_wait_seconds: A partition whose read position has not moved
            for this long while it has work goes silent (no heartbeat), so
            the merge stops waiting for it.
        dedup_horizon_seconds: Event time post ids are remembered for.
        dedup_max_ids: Most post ids remembered per partition.
        snapshots: Report open buckets after each batch (early alerting).
        snapshot_max_bytes: Most encoded topic counts per snapshot report.
        window_seconds: The detector window: an idle close closes through
            its end, so the window completes (0: one bucket).

    """

    bucket_seconds: int
    grace_seconds: int
    idle_close_seconds: float
    window_wait_seconds: float
    dedup_horizon_seconds: int = 0
    dedup_max_ids: int = 2_000_000
    snapshots: bool = True
    snapshot_max_bytes: int = SNAPSHOT_MAX_BYTES
    window_seconds: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> CountSettings:
        """Return the count stage's settings as the worker derives them."""
        return cls(
            bucket_seconds=settings.bucket_seconds,
            window_seconds=settings.window_seconds,
            grace_seconds=settings.window_grace_seconds,
            idle_close_seconds=settings.idle_close_seconds,
            window_wait_seconds=settings.window_wait_seconds,
            dedup_horizon_seconds=settings.dedup_horizon_seconds,
            dedup_max_ids=settings.dedup_max_ids,
        )


@dataclass
class PartitionCount:
    """What the count stage knows of one ``posts`` partition.

    Attributes:
        ledger: Its windows and state-log ledger; None until restored (or
            after a failed write, until rebuilt).
        position: Offset after the last record this worker handled.
        last_post: Monotonic time a batch of it was last counted.
        advanced: Monotonic time ``position`` last moved (or it was restored).
        active: What its last heartbeat said (windows open).

    """

    ledger: PartitionLedger | None = None
    position: int = 0
    last_post: float = 0.0
    advanced: float = 0.0
    active: bool = False


@dataclass
class CountResult:
    """What one batch (or an idle close) of one partition produced.

    Attributes:
        partition: The partition.
        writes: State-log entries to write first (``None`` deletes), in order.
        reports: Then the partials of the buckets closed, the snapshots of
            the open buckets the batch changed and, if the partition's last
            heartbeat said idle, a heartbeat.
        duplicate_offsets: Offsets of later copies of posts already counted.
        counted: Posts counted.
        late: Posts too late for their window.
        duplicates: Copies found.
        replayed: Records at or below the applied offset (read again).
        dedup_forgotten_early: Post ids forgotten before the dedup horizon.

    """

    partition: int
    writes: dict[str, Any | None] = field(default_factory=dict)
    reports: list[PartitionReport] = field(default_factory=list)
    duplicate_offsets: list[int] = field(default_factory=list)
    counted: int = 0
    late: int = 0
    duplicates: int = 0
    replayed: int = 0
    dedup_forgotten_early: int = 0

    @property
    def closed(self) -> int:
        """Partials among the reports (windows closed)."""
        return sum(1 for report in self.reports if report.kind == "partial")


class WindowCounter:
    """Counts posts per partition into windows; see the module docstring."""

    def __init__(self, settings: CountSettings) -> None:
        """Own no partition yet."""
        self.settings = settings
        self.partitions: dict[int, PartitionCount] = {}
        #: Partitions taken away and not given back: a host may still hold
        #: records of theirs; their new owner counts them.
        self.revoked: set[int] = set()

    # -- ownership -------------------------------------------------------

    def assign(self, partitions: Iterable[int]) -> None:
        """Take partitions (restored by the host before their first use)."""
        for partition in partitions:
            self.partitions.setdefault(partition, PartitionCount())
            self.revoked.discard(partition)

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop partitions this worker no longer owns (rebuilt if they return)."""
        for partition in partitions:
            self.revoked.add(partition)
            self.partitions.pop(partition, None)

    def drop(self, partitions: Iterable[int]) -> list[int]:
        """Forget the ledgers whose writes may not all have landed.

        Returns:
            The partitions that had a ledger (to log that they are rebuilt).

        """
        dropped = []
        for partition in partitions:
            state = self.partitions.get(partition)
            if state is not None and state.ledger is not None:
                state.ledger = None
                # What the last heartbeat said may not have gone out: the
                # next batch tells the merge again that windows are open.
                state.active = False
                dropped.append(partition)
        return dropped

    def unrestored(self) -> list[int]:
        """Owned partitions whose ledger the host must restore, ascending."""
        return sorted(p for p, s in self.partitions.items() if s.ledger is None)

    def restored(self) -> list[int]:
        """Owned partitions with a ledger, ascending."""
        return sorted(p for p, s in self.partitions.items() if s.ledger is not None)

    def restore(
        self, partition: int, entries: Iterable[tuple[str, Any]], now: float
    ) -> list[PartitionReport]:
        """Rebuild a partition from its state-log entries.

        Returns:
            Partials of its last close, logged but perhaps never sent (a
            crash, or a send that failed): the host sends them again (the
            merge ignores copies).

        """
        settings = self.settings
        ledger = PartitionLedger.restore(
            partition,
            settings.bucket_seconds,
            settings.grace_seconds,
            entries,
            dedup_horizon=settings.dedup_horizon_seconds,
            dedup_max_ids=settings.dedup_max_ids,
        )
        unsent = [PartitionReport.partial(partition, w) for w in ledger.unsent]
        ledger.unsent = []
        state = self.partitions.setdefault(partition, PartitionCount())
        state.ledger = ledger
        state.last_post = state.advanced = now
        state.position = max(state.position, ledger.applied_offset + 1)
        return unsent

    def ledger(self, partition: int) -> PartitionLedger:
        """Return a restored partition's ledger.

        Raises:
            KeyError: The partition is not owned or not restored.

        """
        ledger = self.partitions[partition].ledger
        if ledger is None:
            raise KeyError(f"partition {partition} is not restored")
        return ledger

    # -- counting --------------------------------------------------------

    def count(
        self,
        partition: int,
        posts: Sequence[tuple[int, PostFacts]],
        now: float,
        *,
        caught_up: bool,
    ) -> CountResult:
        """Count ``(offset, post)`` pairs of one restored partition.

        The ledger changes in memory now; the host writes ``writes`` before
        it sends ``reports``, and calls :meth:`drop` if either fails.
        ``caught_up`` says whether this worker has read every record of the
        partition so far (see :meth:`heartbeat`).
        """
        state = self.partitions[partition]
        ledger = self.ledger(partition)
        outcome = ledger.apply(posts)
        state.last_post = now
        reports = [PartitionReport.partial(partition, w) for w in outcome.closed]
        if self.settings.snapshots:
            for start in outcome.touched:
                bucket = ledger.windows.open.get(start)
                if bucket is not None and bucket.topics:
                    reports += snapshot_reports(
                        partition,
                        bucket,
                        ledger.applied_offset,
                        self.settings.snapshot_max_bytes,
                    )
        result = CountResult(
            partition,
            writes=outcome.writes,
            reports=reports,
            duplicate_offsets=list(outcome.duplicate_offsets),
            counted=outcome.counted,
            late=outcome.late,
            duplicates=outcome.duplicates,
            replayed=outcome.skipped,
            dedup_forgotten_early=outcome.dedup_forgotten_early,
        )
        if not state.active:
            # Tell the merge at once that this partition has windows open
            # again, so that it waits for them.
            heartbeat = self.heartbeat(partition, now, caught_up=caught_up)
            if heartbeat is not None:
                result.reports.append(heartbeat)
        return result

    def advance(self, partition: int, position: int, now: float) -> None:
        """Move the read position once a batch is counted and its writes landed.

        Until then the partition must not pass for caught up (and have its
        windows idle-closed).
        """
        state = self.partitions.get(partition)
        if state is not None and position > state.position:
            state.position = position
            state.advanced = now

    def caught_up(self, partition: int, highwater: int | None) -> bool:
        """Return True once this worker has handled every record so far.

        ``highwater`` is the offset the partition's next record will get
        (None if the host does not know it yet).
        """
        state = self.partitions.get(partition)
        return (
            highwater is not None and state is not None and highwater <= state.position
        )

    def idle_close(
        self, partition: int, now: float, *, caught_up: bool
    ) -> CountResult | None:
        """Close a quiet partition's open windows; None if it is not idle.

        Idle: windows open, no post counted for ``idle_close_seconds``, and
        caught up (quiet only because its records have not reached this
        worker yet, after a restart or a rebalance, is not idle).
        """
        state = self.partitions[partition]
        ledger = self.ledger(partition)
        if not (
            ledger.windows.open
            and now - state.last_post >= self.settings.idle_close_seconds
            and caught_up
        ):
            return None
        outcome = ledger.flush(span=self.settings.window_seconds)
        return CountResult(
            partition,
            writes=outcome.writes,
            reports=[PartitionReport.partial(partition, w) for w in outcome.closed],
            dedup_forgotten_early=outcome.dedup_forgotten_early,
        )

    def heartbeat(
        self, partition: int, now: float, *, caught_up: bool
    ) -> PartitionReport | None:
        """Return the partition's heartbeat, or None to stay silent.

        Active while it has windows open or records still on their way. A
        partition stuck with work (its batch keeps failing, or waits out an
        outage) for ``window_wait_seconds`` says nothing: silence is what the
        merge gives up on, completing windows without it (marked incomplete)
        until its partials amend them. ("Idle" would pass them as complete.)
        """
        state = self.partitions[partition]
        pending = bool(self.ledger(partition).windows.open) or not caught_up
        stalled = now - state.advanced >= self.settings.window_wait_seconds
        if pending and stalled:
            state.active = False
            return None
        state.active = pending
        return PartitionReport.heartbeat(partition, pending)


def snapshot_reports(
    partition: int, bucket: WindowAggregate, offset: int, max_bytes: int
) -> list[PartitionReport]:
    """Return an open bucket's snapshot as of ``offset``, split by topic.

    A snapshot carries the bucket's watched-topic counts (copied, bounded as
    on the wire), not its global keywords: alert rules read topics only.
    Topics are packed into reports of at most ``max_bytes`` of encoded
    counts each (a topic larger than that alone goes in one report).
    """
    reports: list[PartitionReport] = []
    chunk: dict[str, TopicCounts] = {}
    size = 0
    for name, counts in sorted(bucket.topics.items()):
        data = counts.to_dict(bounded=True)
        cost = len(orjson.dumps(data))
        if chunk and size + cost > max_bytes:
            reports.append(_snapshot(partition, bucket, chunk, offset))
            chunk, size = {}, 0
        chunk[name] = TopicCounts.from_dict(data)
        size += cost
    if chunk:
        reports.append(_snapshot(partition, bucket, chunk, offset))
    return reports


def _snapshot(
    partition: int,
    bucket: WindowAggregate,
    topics: dict[str, TopicCounts],
    offset: int,
) -> PartitionReport:
    window = WindowAggregate(
        bucket.start,
        bucket.size,
        # The bucket's totals; only the topics are split over reports.
        posts=bucket.posts,
        negative=bucket.negative,
        topics=topics,
        max_published=bucket.max_published,
    )
    return PartitionReport.snapshot(partition, window, offset)
