"""Open buckets as the merge knows them: the latest snapshot per partition.

A count partition reports each open bucket it changed, after each batch, as
a *cumulative* snapshot: its counts of the bucket so far, as of an offset
(:meth:`~monitor.records.PartitionReport.snapshot`). :class:`OpenBuckets`
keeps, per ``(bucket, partition, topic)``, the snapshot with the highest
offset: a later one replaces it, an older one (a retried batch, a restart
that replays, a stale owner after a rebalance) changes nothing, and nothing
is ever added twice. A partition's snapshots of a bucket are dropped once
its partial of that bucket reached the merge, and every snapshot of a bucket
once the bucket is emitted.

So an open bucket's counts — the merged partials so far plus the latest
snapshot of every partition that has not sent its partial — are a **lower
bound** of what the bucket will hold when it closes: partitions only add
posts (posts beyond grace are not counted anywhere). Rules whose value only
grows with posts may fire on it.

This is soft state: it is not logged. After the merge restarts, open buckets
look smaller until the partitions' next snapshots come (which only delays an
early firing; the latches in the merge state keep a firing from repeating).
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.analysis.windows.aggregate import TopicCounts, WindowAggregate


class OpenBuckets:
    """The latest snapshot of each open bucket, per partition and topic."""

    def __init__(self) -> None:
        """Start with no snapshot."""
        #: bucket start -> partition -> topic -> (offset, counts)
        self.buckets: dict[int, dict[int, dict[str, tuple[int, TopicCounts]]]] = {}

    def __len__(self) -> int:
        """Snapshots held (one per bucket, partition and topic)."""
        return sum(
            len(topics) for parts in self.buckets.values() for topics in parts.values()
        )

    def add(self, partition: int, snapshot: WindowAggregate, offset: int) -> set[str]:
        """Keep a snapshot's topics where it is the newest; return those changed."""
        parts = self.buckets.setdefault(snapshot.start, {})
        held = parts.setdefault(partition, {})
        changed = set()
        for topic, counts in snapshot.topics.items():
            current = held.get(topic)
            if current is not None and current[0] > offset:
                continue  # an older view of the bucket: the newer one stands
            held[topic] = (offset, counts)
            changed.add(topic)
        return changed

    def closed(self, start: int, partition: int) -> None:
        """Forget a partition's snapshots of a bucket once its partial is in."""
        parts = self.buckets.get(start)
        if parts is not None:
            parts.pop(partition, None)
            if not parts:
                del self.buckets[start]

    def emitted_through(self, start: int) -> None:
        """Forget every snapshot of the buckets up to ``start`` (emitted)."""
        for bucket in [b for b in self.buckets if b <= start]:
            del self.buckets[bucket]

    def starts(self) -> list[int]:
        """Open buckets with a snapshot, oldest first."""
        return sorted(self.buckets)

    def topic(
        self, start: int, name: str, skip: Iterable[int] = ()
    ) -> list[TopicCounts]:
        """Return the partitions' latest counts of ``name`` in bucket ``start``.

        ``skip``: partitions whose partial of the bucket is already merged.
        """
        skipped = set(skip)
        found = []
        for partition, topics in self.buckets.get(start, {}).items():
            entry = topics.get(name)
            if entry is not None and partition not in skipped:
                found.append(entry[1])
        return found
