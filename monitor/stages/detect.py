"""The detect stage's logic: merge partials, evaluate complete windows, keep state.

:class:`WindowDetector` sums the partition reports of ``window-partials``
(:class:`~monitor.analysis.windows.WindowMerger`), runs the detectors and
rules on every complete window
(:class:`~monitor.analysis.detection.WindowEvaluator`) and says what to write
to its state log. It does no I/O and reads no clock: the host (the Faust
agent in :mod:`monitor.pipelines.detect`, a test, a backtest) restores it,
hands it reports, publishes each :class:`DetectResult` (window documents and
bursts, then triggers) and only then writes the result's ``writes``. If any
of that fails the host calls :meth:`WindowDetector.drop` and the next use
rebuilds it from the log, so a window whose outputs did not all go out is
completed again and sends them.

State-log keys (all on partition 0), one codec (:func:`state_key`,
:func:`parse_state_key`):

* ``0:merger:`` progress: windows emitted through, partitions' latest report;
* ``0:eval:<series>``: detector snapshots;
* ``0:pending:<start>:<partition>``: a partial of a window not yet emitted,
  or of one still amendable;
* ``0:emitted:<start>``: an emitted window some partition did not contribute
  to: who did, and the detectors' verdicts on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from monitor.analysis.detection import WindowEvaluator, WindowReport, point_verdicts
from monitor.analysis.tickets import AlertRule
from monitor.analysis.windows import DROPPED, WindowAggregate, WindowMerger
from monitor.records import PartitionReport

#: The merge runs on one partition of ``window-partials``; its state log too.
PARTITION = 0


class StateKind(StrEnum):
    """The kinds of the detect stage's state-log entries."""

    MERGER = "merger"
    EVAL = "eval"
    PENDING = "pending"
    EMITTED = "emitted"


def state_key(kind: StateKind, *parts: object) -> str:
    """Return the state-log key of an entry: ``0:<kind>:<parts…>``.

    (The progress entry is ``0:merger:``, with nothing after the kind.)
    """
    return f"{PARTITION}:{kind.value}:" + ":".join(str(part) for part in parts)


def parse_state_key(key: str) -> tuple[StateKind, str]:
    """Return ``(kind, rest)`` of a key made by :func:`state_key`.

    Raises:
        ValueError: Not a key of this stage.

    """
    _, kind, rest = key.split(":", 2)
    return StateKind(kind), rest


def is_merge_commit(key: str) -> bool:
    """Return True for the progress entry: what a restore trusts last."""
    return key == state_key(StateKind.MERGER)


@dataclass(frozen=True)
class AmendedWindow:
    """An emitted window whose counts a late partial corrected.

    Attributes:
        window: The window with every partial so far.
        complete: Whole once every partition is in; else as complete as when
            it was emitted.
        verdicts: The detectors' verdicts when it was emitted
            (:func:`~monitor.analysis.detection.point_verdicts`).

    """

    window: WindowAggregate
    complete: bool
    verdicts: Mapping[str, list[Any]]


@dataclass(frozen=True)
class DroppedPartial:
    """A partial that came after its window could no longer be corrected."""

    partition: int
    window: WindowAggregate


@dataclass
class DetectResult:
    """What one batch of reports (or a timeout) produced, in publishing order.

    Attributes:
        windows: Complete windows evaluated, oldest first: their points,
            bursts and triggers.
        amended: Emitted windows corrected by late partials.
        dropped: Partials too late to correct anything (counted, logged).
        gap_windows_skipped: Empty windows of a long gap not emitted one by
            one (since the last result).
        writes: State-log entries to write last (``None`` deletes).

    """

    windows: list[WindowReport] = field(default_factory=list)
    amended: list[AmendedWindow] = field(default_factory=list)
    dropped: list[DroppedPartial] = field(default_factory=list)
    gap_windows_skipped: int = 0
    writes: dict[str, Any | None] = field(default_factory=dict)


class WindowDetector:
    """Merges partition reports and evaluates complete windows; see the module."""

    def __init__(
        self, *, partitions: int, window_seconds: int, window_wait_seconds: float
    ) -> None:
        """Start unrestored, for ``partitions`` partitions of ``scored-posts``."""
        self.partitions = partitions
        self.window_seconds = window_seconds
        self.window_wait_seconds = window_wait_seconds
        self.merger: WindowMerger | None = None
        self.evaluator: WindowEvaluator | None = None
        #: Keys in the log now (so that what is gone can be deleted).
        self.saved_keys: set[str] = set()
        #: window start -> {"complete": bool, "verdicts": ...} of an emitted
        #: window, while it is amendable
        self.emitted: dict[int, dict[str, Any]] = {}
        #: the merger's skipped gap windows already reported
        self.gap_windows_reported = 0

    @property
    def restored(self) -> bool:
        """True once :meth:`restore` rebuilt the state (and no drop since)."""
        return self.merger is not None and self.evaluator is not None

    def drop(self) -> None:
        """Forget the in-memory state; the host restores it from the log."""
        self.merger = self.evaluator = None
        self.saved_keys = set()
        self.emitted = {}
        self.gap_windows_reported = 0

    def restore(self, entries: Iterable[tuple[str, Any]], now: float) -> None:
        """Rebuild from the state-log entries (any order); ``now`` is monotonic."""
        self.drop()
        merger = WindowMerger(
            self.partitions, self.window_seconds, self.window_wait_seconds
        )
        evaluator = WindowEvaluator(self.window_seconds)
        detectors: dict[str, Any] = {}
        emitted: dict[int, dict[str, Any]] = {}
        pending: list[tuple[int, int, Any]] = []
        for key, value in entries:
            self.saved_keys.add(key)
            kind, rest = parse_state_key(key)
            if kind is StateKind.MERGER:
                merger.emitted_through = value["emitted_through"]
                merger.reported.update(
                    {int(p): int(start) for p, start in value["reported"].items()}
                )
            elif kind is StateKind.EVAL:
                detectors[rest] = value
            elif kind is StateKind.EMITTED:
                emitted[int(rest)] = value
            else:
                start, partition = (int(part) for part in rest.split(":"))
                pending.append((start, partition, value))
        partials: dict[int, list[WindowAggregate]] = defaultdict(list)
        for start, partition, value in pending:
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
        evaluator.restore(detectors)
        self.merger, self.evaluator = merger, evaluator

    def _state(self) -> tuple[WindowMerger, WindowEvaluator]:
        if self.merger is None or self.evaluator is None:
            raise RuntimeError("the detector is not restored")
        return self.merger, self.evaluator

    def handle(
        self,
        reports: Iterable[PartitionReport],
        now: float,
        rules: Sequence[AlertRule],
        topics: Sequence[str],
    ) -> DetectResult:
        """Merge a batch of reports; evaluate the windows they complete."""
        merger, _ = self._state()
        writes: dict[str, Any | None] = {}
        completed: list[tuple[WindowAggregate, bool]] = []
        amended: dict[int, WindowAggregate] = {}
        dropped: list[DroppedPartial] = []
        for report in reports:
            partition = report.partition
            if report.window is None:
                completed += merger.heartbeat(partition, report.active, now)
                continue
            partial = report.window
            outcome = merger.add(partition, partial, now)
            if outcome.accepted:
                key = state_key(StateKind.PENDING, partial.start, partition)
                writes[key] = partial.to_dict(bounded=False)
            if outcome.amended is not None and partial.posts:
                # (an empty share changes no count: nothing to rewrite)
                amended[partial.start] = outcome.amended
            elif outcome.status == DROPPED:
                dropped.append(DroppedPartial(partition, partial))
            completed += outcome.completed
        result = self._finish(completed, writes, amended, rules, topics)
        result.dropped = dropped
        return result

    def tick(
        self, now: float, rules: Sequence[AlertRule], topics: Sequence[str]
    ) -> DetectResult | None:
        """Complete windows whose missing partitions fell silent; None if none."""
        if not self.restored:
            return None
        completed = self._state()[0].completed(now)
        if not completed:
            return None
        return self._finish(completed, {}, {}, rules, topics)

    def _finish(
        self,
        completed: list[tuple[WindowAggregate, bool]],
        writes: dict[str, Any | None],
        amended: Mapping[int, WindowAggregate],
        rules: Sequence[AlertRule],
        topics: Sequence[str],
    ) -> DetectResult:
        merger, evaluator = self._state()
        result = DetectResult()
        result.gap_windows_skipped = (
            merger.skipped_gap_windows - self.gap_windows_reported
        )
        self.gap_windows_reported = merger.skipped_gap_windows
        for window, complete in completed:
            report = evaluator.evaluate(window, rules, topics, complete)
            result.windows.append(report)
            if window.start in merger.amendable:
                self.emitted[window.start] = {
                    "complete": complete,
                    "verdicts": point_verdicts(report),
                }
        for start, window in sorted(amended.items()):
            info = self.emitted.get(start, {})
            result.amended.append(
                AmendedWindow(
                    window,
                    complete=start not in merger.amendable
                    or bool(info.get("complete")),
                    verdicts=info.get("verdicts", {}),
                )
            )
        # Keep what may still be amended; delete the rest of what was emitted.
        for start, info in list(self.emitted.items()):
            record = merger.amendable.get(start)
            if record is None:
                del self.emitted[start]
                continue
            writes[state_key(StateKind.EMITTED, start)] = {
                "partitions": sorted(record.partitions),
                **info,
            }
        through = merger.emitted_through
        for key in [*self.saved_keys, *writes]:
            kind, rest = parse_state_key(key)
            if kind in (StateKind.PENDING, StateKind.EMITTED) and through is not None:
                start = int(rest.split(":")[0])
                if start <= through and start not in merger.amendable:
                    writes[key] = None
        if completed:
            entries = {
                state_key(StateKind.EVAL, series): value
                for series, value in evaluator.snapshot().items()
            }
            for key in self.saved_keys:
                if parse_state_key(key)[0] is StateKind.EVAL and key not in entries:
                    writes[key] = None
            writes.update(entries)
        writes[state_key(StateKind.MERGER)] = {
            "emitted_through": merger.emitted_through,
            "reported": {str(p): start for p, start in merger.reported.items()},
        }
        for key, value in writes.items():
            if value is None:
                self.saved_keys.discard(key)
            else:
                self.saved_keys.add(key)
        result.writes = writes
        return result
