"""Summing every partition's partials into complete windows, in order.

See :mod:`monitor.analysis.windows`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from monitor.analysis.windows.aggregate import WindowAggregate


@dataclass
class _Pending:
    aggregate: WindowAggregate
    partitions: set[int]
    first_seen: float


#: Emitted windows that lacked a partition's partial are kept this many
#: windows back, so the partial can still correct them when it comes.
AMEND_WINDOWS = 24
#: The merger emits at most this much event time of empty windows for one gap.
MAX_GAP_SECONDS = 7 * 86_400



class MergeStatus(StrEnum):
    """What the merger did with one partial (see :class:`MergeOutcome`)."""

    TAKEN = "taken"
    DUPLICATE = "duplicate"
    AMENDED = "amended"
    DROPPED = "dropped"


TAKEN = MergeStatus.TAKEN
DUPLICATE = MergeStatus.DUPLICATE
AMENDED = MergeStatus.AMENDED
DROPPED = MergeStatus.DROPPED


@dataclass
class MergeOutcome:
    """What :meth:`WindowMerger.add` did with one partial.

    Attributes:
        status: ``taken`` (pending), ``duplicate`` (that partition's partial
            of that window is already in), ``amended`` (it corrected a window
            already emitted without it) or ``dropped`` (its window was emitted
            too long ago to correct).
        completed: Windows now complete, oldest first, with ``True`` when no
            partition was given up on.
        amended: The corrected window (all partials so far), when amended.

    """

    status: MergeStatus
    completed: list[tuple[WindowAggregate, bool]] = field(default_factory=list)
    amended: WindowAggregate | None = None

    @property
    def accepted(self) -> bool:
        """True if the partial changed a count (taken or amended)."""
        return self.status in (TAKEN, AMENDED)


class WindowMerger:
    """Sums partials from every partition into complete windows, in order.

    A window is emitted once every partition has either closed it, said it
    is idle (a heartbeat with no open windows: it has nothing more for now),
    or gone silent for ``timeout`` seconds (no partial, no heartbeat: its
    worker is gone; the window is then marked incomplete). A partition that
    is alive and still has open windows is waited for, however long it takes
    to catch up. A partial that arrives after its window was emitted without
    it (the partition was idle or given up on) amends that window, if it is
    one of the last ``amend_windows``.

    Partitions send only the windows they have posts in, plus a marker of how
    far they have closed (see :meth:`PartitionWindows.close`), so a window
    nobody sent is empty once it is complete: it is emitted as an empty
    window, of a gap at most ``max_gap_windows`` long (the rest of a longer
    gap is skipped and counted in :attr:`skipped_gap_windows`).

    Args:
        partitions: Number of ``scored-posts`` partitions that report.
        size: Window length in seconds.
        timeout: Wall-clock seconds of silence after which a partition is
            given up on (for a partition never heard from: since the window's
            first partial arrived).
        amend_windows: Emitted windows kept for amendment.
        max_gap_windows: Most empty windows emitted for one gap between
            windows that have partials (default: a week of windows).

    """

    def __init__(
        self,
        partitions: int,
        size: int,
        timeout: float,
        amend_windows: int = AMEND_WINDOWS,
        max_gap_windows: int | None = None,
    ) -> None:
        """Start with nothing pending."""
        if max_gap_windows is None:
            max_gap_windows = max(1, MAX_GAP_SECONDS // size)
        if max_gap_windows < 0:
            raise ValueError("max_gap_windows must be >= 0")
        self.partitions = partitions
        self.size = size
        self.timeout = timeout
        self.amend_windows = amend_windows
        self.max_gap_windows = max_gap_windows
        #: empty windows of over-long gaps not emitted, since this merger began
        self.skipped_gap_windows = 0
        self.pending: dict[int, _Pending] = {}
        #: partition -> start of the latest window it closed
        self.reported: dict[int, int] = {}
        #: start of the latest window emitted
        self.emitted_through: int | None = None
        #: emitted windows some partition did not contribute to, by start
        self.amendable: dict[int, _Pending] = {}
        #: partition -> wall clock of its latest partial or heartbeat
        self.heard: dict[int, float] = {}
        #: partitions whose latest heartbeat said they have no open window
        self.idle: set[int] = set()

    def add(self, partition: int, partial: WindowAggregate, now: float) -> MergeOutcome:
        """Take one partition's partial; return what it did.

        Partials may be re-sent after a restart: a second copy is a
        ``duplicate`` and changes nothing.
        """
        outcome = self.absorb(partition, partial, now)
        if outcome.status == TAKEN:
            outcome.completed = self.completed(now)
        return outcome

    def heartbeat(
        self, partition: int, active: bool, now: float
    ) -> list[tuple[WindowAggregate, bool]]:
        """Note that a partition is alive; ``active`` if it has open windows.

        Returns the windows this completes (an idle partition is no longer
        waited for).
        """
        self.heard[partition] = now
        if active:
            self.idle.discard(partition)
        else:
            self.idle.add(partition)
        return self.completed(now)

    def absorb(
        self, partition: int, partial: WindowAggregate, now: float
    ) -> MergeOutcome:
        """Take a partial without completing anything (used when restoring)."""
        if partial.size != self.size:
            raise ValueError(
                f"partial of a {partial.size}s window, expected {self.size}s"
            )
        self.heard[partition] = now
        # It closed a window; whether it has more open is for its next heartbeat.
        self.idle.discard(partition)
        start = partial.start
        if self.emitted_through is not None and start <= self.emitted_through:
            return self._amend(partition, partial)
        pending = self.pending.get(start)
        if pending is None:
            pending = self.pending[start] = _Pending(
                WindowAggregate(start, self.size), set(), now
            )
        if partition in pending.partitions:
            return MergeOutcome(DUPLICATE)
        pending.partitions.add(partition)
        pending.aggregate.merge(partial)
        self.reported[partition] = max(self.reported.get(partition, start), start)
        return MergeOutcome(TAKEN)

    def _amend(self, partition: int, partial: WindowAggregate) -> MergeOutcome:
        start = partial.start
        record = self.amendable.get(start)
        if record is None:
            # Partitions close windows in order: one that closed a later
            # window has sent this one before (a re-send after a restart).
            if self.reported.get(partition, start - self.size) >= start:
                return MergeOutcome(DUPLICATE)
            # Every window emitted without some partition stays amendable
            # within the horizon, so one that is not was never emitted: it
            # lies before the first window emitted (a partition given up on
            # from the start). It was empty for everyone else; amend it.
            assert self.emitted_through is not None
            horizon = self.emitted_through - self.amend_windows * self.size
            if start <= horizon:
                return MergeOutcome(DROPPED)
            record = self.amendable[start] = _Pending(
                WindowAggregate(start, self.size), self._closed(start), 0.0
            )
        if partition in record.partitions:
            return MergeOutcome(DUPLICATE)
        record.partitions.add(partition)
        record.aggregate.merge(partial)
        self.reported[partition] = max(self.reported.get(partition, start), start)
        amended = record.aggregate
        if len(record.partitions) >= self.partitions:
            del self.amendable[start]  # nothing is missing any more
        return MergeOutcome(AMENDED, amended=amended)

    def restore_emitted(
        self, start: int, partitions: Iterable[int], partials: Iterable[WindowAggregate]
    ) -> None:
        """Rebuild an amendable window from the partials it was emitted with."""
        record = self.amendable[start] = _Pending(
            WindowAggregate(start, self.size), set(partitions), 0.0
        )
        for partial in partials:
            record.aggregate.merge(partial)

    def _waiting_for(self, start: int, pending: _Pending, now: float) -> bool | None:
        """Return None while a live partition may still close ``start``.

        Otherwise return whether a silent partition was given up on.
        """
        gave_up = False
        for partition in range(self.partitions):
            if self.reported.get(partition, start - self.size) >= start:
                continue
            if partition in self.idle:
                continue
            last = self.heard.get(partition, pending.first_seen)
            if now - last < self.timeout:
                return None
            gave_up = True
        return gave_up

    def completed(self, now: float) -> list[tuple[WindowAggregate, bool]]:
        """Return windows now complete (or given up on), oldest first, gaps filled.

        A gap longer than ``max_gap_windows`` is filled with its last
        ``max_gap_windows`` windows; the others are counted in
        :attr:`skipped_gap_windows`.
        """
        done: list[tuple[WindowAggregate, bool]] = []
        while self.pending:
            start = min(self.pending)
            pending = self.pending[start]
            gave_up = self._waiting_for(start, pending, now)
            if gave_up is None:
                break
            del self.pending[start]
            complete = not gave_up
            if self.emitted_through is not None:
                # Every partition sends each window it has posts in, so one
                # that no partition sent was empty for each that closed it.
                first = self.emitted_through + self.size
                kept = max(first, start - self.max_gap_windows * self.size)
                self.skipped_gap_windows += (kept - first) // self.size
                for gap in range(kept, start, self.size):
                    window = WindowAggregate(gap, self.size)
                    self._keep(_Pending(window, self._closed(gap), now))
                    done.append((window, complete))
            pending.partitions |= self._closed(start)
            self._keep(pending)
            done.append((pending.aggregate, complete))
            self.emitted_through = start
        return done

    def _closed(self, start: int) -> set[int]:
        """Partitions that have closed the window at ``start`` (sent it or later)."""
        return {p for p, through in self.reported.items() if through >= start}

    def _keep(self, emitted: _Pending) -> None:
        if len(emitted.partitions) < self.partitions:
            self.amendable[emitted.aggregate.start] = emitted
        horizon = emitted.aggregate.start - self.amend_windows * self.size
        for start in [s for s in self.amendable if s <= horizon]:
            del self.amendable[start]

