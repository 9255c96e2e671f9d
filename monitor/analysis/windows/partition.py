"""One partition's open windows and the state-log ledger that rebuilds them.

See :mod:`monitor.analysis.windows` for how counting is split between
partitions and the merge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.analysis.windows.aggregate import PostFacts, WindowAggregate, window_start
from monitor.analysis.windows.dedup import DedupMemory, bucket_seconds_for


@dataclass(frozen=True)
class AddResult:
    """What :meth:`PartitionWindows.add` did with one post."""

    counted: bool
    window_start: int
    late: bool = False
    duplicate: bool = False


def post_hash(post_id: str) -> int:
    """Return a stable 64-bit hash of a post id (Python's ``hash`` is salted)."""
    digest = hashlib.blake2b(post_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class PartitionWindows:
    """Open windows of one ``scored-posts`` partition; see the module docstring.

    Args:
        size: Window length in seconds.
        grace: Seconds of event time a post may be late and still count.
        track_ids: Keep the hashes of the post ids counted per open window, so
            that a copy in the same window counts once. A caller that
            recognises copies itself (a ledger with a dedup horizon) turns
            this off, so that no id is checked and held twice.

    """

    def __init__(self, size: int, grace: int, *, track_ids: bool = True) -> None:
        """Start with no windows."""
        if size <= 0 or grace < 0:
            raise ValueError("window size must be > 0 and grace >= 0")
        self.size = size
        self.grace = grace
        self.track_ids = track_ids
        self.open: dict[int, WindowAggregate] = {}
        #: Hashes of the post ids counted per open window (when ``track_ids``):
        #: the stage upstream is at-least-once, so a post can arrive twice
        #: (same partition, as ``scored-posts`` is keyed by post id); it is
        #: counted once.
        self.seen: dict[int, set[int]] = {}
        #: Start of the latest window closed (emitted, or passed by the
        #: watermark before this partition had a post in it), None before the
        #: first close.
        self.closed_through: int | None = None
        self.max_published: float | None = None

    @property
    def watermark(self) -> float | None:
        """Event time up to which windows are complete (latest seen - grace)."""
        return None if self.max_published is None else self.max_published - self.grace

    def add(self, post: PostFacts, digest: int | None = None) -> AddResult:
        """Count a post in its window, unless its window has closed (too late).

        Args:
            post: The post.
            digest: ``post_hash(post.post_id)``, if the caller has it already
                (unused without ``track_ids``).

        """
        start = window_start(post.published, self.size)
        if self.closed_through is not None and start <= self.closed_through:
            return AddResult(False, start, late=True)
        if self.track_ids:
            seen = self.seen.get(start)
            if seen is None:
                seen = self.seen[start] = set()
            if digest is None:
                digest = post_hash(post.post_id)
            if digest in seen:
                return AddResult(False, start, duplicate=True)
            seen.add(digest)
        window = self.open.get(start)
        if window is None:
            window = self.open[start] = WindowAggregate(start, self.size)
        window.add(post)
        if self.max_published is None or post.published > self.max_published:
            self.max_published = post.published
        return AddResult(True, start)

    def close(self, flush: bool = False, span: int = 0) -> list[WindowAggregate]:
        """Close every window the watermark has passed.

        Args:
            flush: Close every open window regardless of the watermark (the
                partition went idle: no late posts are expected any more).
            span: With ``flush``, close through the end of the ``span``-long
                window (a multiple of the window length) holding the latest
                open one, so the detector window it belongs to completes
                too. (0: through the latest open window.)

        Returns:
            The closed windows that have posts, oldest first, then (unless it
            is the last of those) the latest window closed, empty, as the
            marker of how far this partition has closed. Nothing if no new
            window closed, or if this is the first close and none of this
            partition's windows closed (it then has nothing to say yet). At
            most one partial more than the windows with posts.

        """
        if self.max_published is None:
            return []
        if flush:
            if not self.open:
                return []
            last = max(self.open)
            if span > self.size:
                last = window_start(last, span) + span - self.size
        else:
            watermark = self.max_published - self.grace
            last = window_start(watermark, self.size) - self.size
            if self.closed_through is not None and last <= self.closed_through:
                return []
        starts = sorted(start for start in self.open if start <= last)
        self.closed_through, before = last, self.closed_through
        if before is None and not starts:
            # Nothing of this partition fell in a window the watermark has
            # passed; those windows are over all the same, so a post for one
            # of them is late, as it is once some window has closed.
            return []
        closed = []
        for start in starts:
            closed.append(self.open.pop(start))
            self.seen.pop(start, None)
        if not starts or starts[-1] != last:
            closed.append(WindowAggregate(last, self.size))
        return closed



@dataclass
class BatchOutcome:
    """What one batch did to a partition's windows.

    Attributes:
        closed: Partials of the windows closed, oldest first.
        writes: State-log entries to persist (key -> value, ``None`` deletes),
            in the order to write them.
        counted: Posts counted.
        late: Posts whose window had already closed (not counted).
        duplicates: Posts at a new offset whose id was counted or seen before
            (in the same open window, or within the dedup horizon): not
            counted again.
        skipped: Posts at or below the applied offset (already counted or
            found a duplicate: a redelivery or a batch handled again).
        duplicate_offsets: Offsets of the ``duplicates``, plus those of the
            ``skipped`` posts that were duplicates when first applied (the
            recent ones: see :class:`PartitionLedger`), in batch order. The
            first copy wins, so none of these is indexed either.
        dedup_forgotten_early: Post ids forgotten before the end of the dedup
            horizon because more than ``dedup_max_ids`` were held.
        touched: Starts of the windows the batch counted posts in, ascending
            (those still open are what the count stage snapshots).

    """

    closed: list[WindowAggregate] = field(default_factory=list)
    writes: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    counted: int = 0
    late: int = 0
    duplicates: int = 0
    skipped: int = 0
    duplicate_offsets: list[int] = field(default_factory=list)
    dedup_forgotten_early: int = 0
    touched: list[int] = field(default_factory=list)


#: Post ids remembered per partition by default when a dedup horizon is set.
DEDUP_MAX_IDS = 2_000_000
#: A redelivered post that was a duplicate is reported as one again if its
#: offset is at most this far below the partition's applied offset.
DUPLICATE_OFFSETS_SPAN = 100_000


class PartitionLedger:
    """One partition's windows plus the state log that rebuilds them.

    Each batch writes one *delta* entry per window it touched (that batch's
    counts, with its last offset), the partials of the windows it closed,
    then the ``meta`` entry (offset applied, latest window closed), and last
    deletes the deltas of the windows closed. Restoring sums the surviving
    deltas. The state log keeps a partition's writes in order, and a failed
    batch may leave any prefix of them: a batch counts as applied once its
    meta entry landed; before that, whatever it wrote is ignored and the
    batch is handled again. The next batch deletes those entries, and its
    meta entry names them (``stale``), so that a restore still ignores one
    whose delete did not land once the applied offset has passed it. (The
    caller restores the ledger when a batch's writes fail, so a ledger that
    handles a batch has had every write of the one before land.) Posts at or
    below the applied offset are skipped, so replaying a batch after a crash
    neither loses nor double-counts a post; a window closed again after a
    crash yields the same partial, which the merge ignores.

    With a ``dedup_horizon``, the hashes of the post ids seen (counted or
    late) are remembered for that much event time
    (:class:`~monitor.analysis.dedup.DedupMemory`, about 80 bytes per id, at
    most ``dedup_max_ids``): a later copy at a new offset is a duplicate even
    with another ``published_at``. They are logged as ``<p>:ids:<bucket>:<n>``
    entries, written before the batch's other entries. That memory is then
    the only record of the ids: the windows keep no set of ids per open
    window and the delta entries list none (without a horizon they do; a log
    written so restores into the memory). Past ``dedup_max_ids`` the oldest
    ids go early, so a copy of one of them counts again, even in a window
    still open.

    **Duplicates redelivered.** The index stage indexes every post not
    reported in :attr:`BatchOutcome.duplicate_offsets`, and a batch can come
    again after its count landed (a retry or bisection after the index step
    failed, a crash or shutdown between counting and indexing, the next
    owner after a rebalance): its posts are then skipped, yet its copies
    must not be indexed. So a batch that finds duplicates logs their offsets
    in a ``<p>:dups:<last offset>`` entry (before its meta entry, and trusted
    once that landed, as a delta is: about 13 bytes per duplicate, written
    once, nothing while there are none); the ledger keeps them
    (:attr:`recent_duplicates`) and reports a skipped post at one of them
    again. Those of the last ``DUPLICATE_OFFSETS_SPAN`` (100,000) offsets
    are kept (so at most that many, about 36 bytes each in memory): a
    redelivery starts at the committed offset, which trails the applied one
    by a commit interval and the buffers, far less. A redelivery from
    further back reports none of its copies: they are indexed again with
    ``op_type=create``, so only a copy dated another day (another daily
    index) lands a second time.

    Writes per batch are bounded by the windows and id buckets it touched
    (plus the id entries of buckets it forgot), not by its posts or by the
    event time a close spans.

    Args:
        partition: The ``scored-posts`` partition (prefix of every key).
        size: Window length in seconds.
        grace: Seconds of event time a post may be late and still count.
        dedup_horizon: Seconds of event time post ids are remembered for
            (0: off, only copies within one open window are recognised).
        dedup_max_ids: Most post ids remembered.

    """

    def __init__(
        self,
        partition: int,
        size: int,
        grace: int,
        *,
        dedup_horizon: int = 0,
        dedup_max_ids: int = DEDUP_MAX_IDS,
    ) -> None:
        """Start empty (nothing applied)."""
        self.partition = partition
        self.dedup = DedupMemory(dedup_horizon, dedup_max_ids, bucket_seconds_for(size))
        # With a horizon the memory recognises every copy: no second set.
        self.windows = PartitionWindows(size, grace, track_ids=not self.dedup.enabled)
        self.applied_offset = -1
        #: Offsets of the recent duplicates by the batch that found them: its
        #: last offset (its entry's key) -> them, ascending, oldest first.
        self._duplicates: dict[int, list[int]] = {}
        self._deltas: dict[int, list[str]] = {}
        self._closed_keys: list[str] = []
        #: Entries of a batch that did not fully land, deleted by the next one.
        self._stale_keys: list[str] = []
        #: Partials of the last close, restored from the log: send them again
        #: (the merge ignores ones it has).
        self.unsent: list[WindowAggregate] = []

    @property
    def remembered_ids(self) -> int:
        """Post ids held for the dedup horizon (0 when it is off)."""
        return len(self.dedup)

    @property
    def recent_duplicates(self) -> list[int]:
        """Offsets of the duplicates kept to report again, ascending."""
        return [offset for found in self._duplicates.values() for offset in found]

    def _key(self, *parts: object) -> str:
        return ":".join(str(part) for part in (self.partition, *parts))

    def apply(self, posts: Iterable[tuple[int, PostFacts]]) -> BatchOutcome:
        """Count a batch of ``(offset, post)`` from this partition, then close."""
        outcome = BatchOutcome()
        deltas: dict[int, WindowAggregate] = {}
        hashes: dict[int, list[int]] = {}
        applied = last = self.applied_offset
        windows = self.windows
        track = windows.track_ids
        dedup = self.dedup if self.dedup.enabled else None
        remembered = self.dedup.ids  # empty while the horizon is off
        recent: set[int] | None = None
        fresh: list[int] = []
        for offset, post in posts:
            if offset <= applied:
                outcome.skipped += 1
                if recent is None:
                    recent = {o for found in self._duplicates.values() for o in found}
                if offset in recent:  # a copy the first time: not indexed now
                    outcome.duplicate_offsets.append(offset)
                continue
            last = max(last, offset)
            digest = post_hash(post.post_id)
            if digest in remembered:
                outcome.duplicates += 1
                outcome.duplicate_offsets.append(offset)
                fresh.append(offset)
                continue
            result = windows.add(post, digest)
            if result.duplicate:
                outcome.duplicates += 1
                outcome.duplicate_offsets.append(offset)
                fresh.append(offset)
                continue
            if dedup is not None:
                dedup.remember(digest, post.published)
            if not result.counted:
                outcome.late += 1
                continue
            if track:
                hashes.setdefault(result.window_start, []).append(digest)
            outcome.counted += 1
            delta = deltas.get(result.window_start)
            if delta is None:
                delta = deltas[result.window_start] = WindowAggregate(
                    result.window_start, windows.size
                )
            delta.add(post)
        entries: dict[str, dict[str, Any]] = {}
        outcome.touched = sorted(deltas)
        for start, delta in deltas.items():
            key = self._key("d", start, last)
            self._deltas.setdefault(start, []).append(key)
            entry: dict[str, Any] = {
                "offset": last,
                "window": delta.to_dict(bounded=False),
                # Counts only once the batch's meta entry (written after it)
                # has landed too; see restore().
                "with_meta": True,
            }
            if track:
                entry["ids"] = hashes[start]
            entries[key] = entry
        if fresh:  # trusted once the meta entry landed too, as a delta is
            fresh.sort()
            self._duplicates[last] = fresh
            entries[self._key("dups", last)] = {"offsets": list(fresh)}
        moved = last > self.applied_offset
        self.applied_offset = last
        deletes = self._forget_duplicates()
        if self._close(outcome, entries, deletes, flush=False) or moved:
            entries[self._key("meta")] = self._meta()
        self._finish(outcome, entries, deletes)
        return outcome

    def flush(self, span: int = 0) -> BatchOutcome:
        """Close every open window (the partition is idle).

        ``span``: close through the end of the ``span``-long window holding
        the latest open one (see :meth:`PartitionWindows.close`).
        """
        outcome = BatchOutcome()
        entries: dict[str, dict[str, Any]] = {}
        deletes: list[str] = []
        if self._close(outcome, entries, deletes, flush=True, span=span):
            entries[self._key("meta")] = self._meta()
        self._finish(outcome, entries, deletes)
        return outcome

    def _close(
        self,
        outcome: BatchOutcome,
        entries: dict[str, dict[str, Any]],
        deletes: list[str],
        flush: bool,
        span: int = 0,
    ) -> bool:
        """Close what the watermark passed; return True if ``closed_through`` moved."""
        before = self.windows.closed_through
        closed = self.windows.close(flush=flush, span=span)
        if not closed and self.windows.closed_through == before:
            return False
        outcome.closed.extend(closed)
        for window in closed:
            for key in self._deltas.pop(window.start, []):
                if entries.pop(key, None) is None:  # not one of this batch's
                    deletes.append(key)
        if closed:
            # The partials are logged with the close, before they are sent:
            # a window's content is fixed the first time it closes, and one
            # closed but not sent before a crash is sent again on restore.
            deletes.extend(self._closed_keys)
            self._closed_keys = [self._key("closed", w.start) for w in closed]
            for key, window in zip(self._closed_keys, closed, strict=True):
                entries[key] = window.to_dict(bounded=True)
        return True

    def _finish(
        self,
        outcome: BatchOutcome,
        entries: dict[str, dict[str, Any]],
        deletes: list[str],
    ) -> None:
        """Forget ids past the horizon or the cap; put the writes in order.

        The state log keeps the order of one partition's writes, and a failed
        batch may leave any prefix of them, so: changed id entries first
        (dropped on restore unless the batch's meta entry landed), then the
        new deltas and closed partials, then the meta entry (the batch counts
        from here), and deletes last (one that does not land leaves an entry
        that restoring ignores).
        """
        watermark = self.windows.watermark
        if self.dedup.enabled and watermark is not None:
            outcome.dedup_forgotten_early = self.dedup.expire(watermark)
        chunks, forgotten = self.dedup.writes(self.applied_offset)
        writes: dict[str, dict[str, Any] | None] = {
            self._key("ids", *position): value for position, value in chunks.items()
        }
        writes.update(entries)
        stale = [key for key in self._stale_keys if key not in writes]
        meta = writes.get(self._key("meta"))
        if stale and meta is not None:
            meta["stale"] = stale  # see the class docstring
        deletes += self._stale_keys
        deletes += [self._key("ids", *position) for position in forgotten]
        for key in deletes:
            if key not in writes:
                writes[key] = None
        self._stale_keys = []
        outcome.writes = writes

    def _forget_duplicates(self) -> list[str]:
        """Forget duplicates beyond the span; return their entries' keys."""
        low = self.applied_offset - DUPLICATE_OFFSETS_SPAN
        gone = []
        for last, found in self._duplicates.items():
            if found[-1] > low:
                break  # entries are in offset order
            gone.append(last)
        for last in gone:
            del self._duplicates[last]
        return [self._key("dups", last) for last in gone]

    def _meta(self) -> dict[str, Any]:
        return {
            "offset": self.applied_offset,
            "closed_through": self.windows.closed_through,
            "max_published": self.windows.max_published,
        }

    @classmethod
    def restore(
        cls,
        partition: int,
        size: int,
        grace: int,
        entries: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        dedup_horizon: int = 0,
        dedup_max_ids: int = DEDUP_MAX_IDS,
    ) -> PartitionLedger:
        """Rebuild from the state-log entries of this partition (any order).

        ``dedup_horizon`` and ``dedup_max_ids`` are as for the constructor.
        """
        ledger = cls(
            partition,
            size,
            grace,
            dedup_horizon=dedup_horizon,
            dedup_max_ids=dedup_max_ids,
        )
        windows = ledger.windows
        meta_key = ledger._key("meta")
        closed_prefix = ledger._key("closed") + ":"
        prefix = ledger._key("d") + ":"
        ids_prefix = ledger._key("ids") + ":"
        dups_prefix = ledger._key("dups") + ":"
        batches: dict[int, list[tuple[str, Mapping[str, Any]]]] = {}
        closed: list[tuple[str, Mapping[str, Any]]] = []
        chunks = []
        duplicates: dict[int, list[int]] = {}
        stale: set[str] = set()  # left by a failure, being deleted
        for key, value in entries:
            if key == meta_key:
                ledger.applied_offset = max(ledger.applied_offset, int(value["offset"]))
                windows.closed_through = value.get("closed_through")
                windows.max_published = value.get("max_published")
                stale = set(value.get("stale", ()))
            elif key.startswith(dups_prefix):
                last = int(key[len(dups_prefix) :])
                duplicates[last] = [int(offset) for offset in value["offsets"]]
            elif key.startswith(closed_prefix):
                closed.append((key, value))
            elif key.startswith(prefix):
                batches.setdefault(int(value["offset"]), []).append((key, value))
            elif key.startswith(ids_prefix):
                bucket, index = key[len(ids_prefix) :].split(":")
                chunks.append(((int(bucket), int(index)), value))
        # Entries of a batch or flush whose meta entry did not land are left
        # over from a failure: it is handled again, and they are deleted.
        logged = ledger.applied_offset
        for offset, batch in sorted(batches.items()):
            if offset > logged and any("with_meta" in value for _, value in batch):
                ledger._stale_keys.extend(key for key, _ in batch)
                continue
            ledger.applied_offset = max(ledger.applied_offset, offset)
            for key, value in batch:
                if key in stale:
                    ledger._stale_keys.append(key)
                else:
                    ledger._restore_delta(key, value)
        for key, value in closed:
            partial = WindowAggregate.from_dict(value).as_bucket(size)
            through = windows.closed_through
            if through is None or partial.start > through or key in stale:
                ledger._stale_keys.append(key)
                continue
            ledger._closed_keys.append(key)
            ledger.unsent.append(partial)
        ledger.dedup = DedupMemory.restore(
            dedup_horizon,
            dedup_max_ids,
            bucket_seconds_for(size),
            chunks,
            applied_offset=ledger.applied_offset,
            watermark=windows.watermark,
        )
        if not windows.track_ids:
            # Deltas logged without a horizon list their ids: the memory holds
            # them now (the next batch logs them), so copies still count once.
            for start, ids in windows.seen.items():
                for digest in ids:
                    if digest not in ledger.dedup:
                        ledger.dedup.remember(digest, start)
            windows.seen.clear()
        for last, found in sorted(duplicates.items()):
            key = ledger._key("dups", last)
            if last > logged or key in stale:
                ledger._stale_keys.append(key)
            else:
                ledger._duplicates[last] = found
        ledger._stale_keys += ledger._forget_duplicates()
        ledger.unsent.sort(key=lambda window: window.start)
        return ledger

    def _restore_delta(self, key: str, value: Mapping[str, Any]) -> None:
        windows = self.windows
        delta = WindowAggregate.from_dict(value["window"]).as_bucket(windows.size)
        closed = windows.closed_through
        if closed is not None and delta.start <= closed:
            return  # its window closed; the delete did not land before a crash
        window = windows.open.get(delta.start)
        if window is None:
            window = windows.open[delta.start] = WindowAggregate(
                delta.start, windows.size
            )
        window.merge(delta)
        windows.seen.setdefault(delta.start, set()).update(value.get("ids", ()))
        self._deltas.setdefault(delta.start, []).append(key)
        if delta.max_published and (
            windows.max_published is None or delta.max_published > windows.max_published
        ):
            windows.max_published = delta.max_published
