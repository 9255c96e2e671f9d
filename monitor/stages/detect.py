"""The detect stage's logic: merge buckets, evaluate rules and detectors, keep state.

:class:`WindowDetector` sums the partition reports of ``window-partials``
into complete buckets (:class:`~monitor.analysis.windows.WindowMerger`),
evaluates each threshold rule on its own window of buckets
(:class:`~monitor.analysis.rulewindows.RuleWindows`), sums the buckets into
detector windows for the burst detectors and emerging terms
(:class:`~monitor.analysis.detection.WindowEvaluator`), and, from the open
buckets' snapshots (:class:`~monitor.analysis.windows.OpenBuckets`), fires the
rules that a lower bound already crosses. It says what to write to its state
log. It does no I/O and reads no clock: the host (the Faust agent in
:mod:`monitor.pipelines.detect`, a test, a backtest) restores it, hands it
reports, publishes each :class:`DetectResult` (window documents and bursts,
then triggers) and only then writes the result's ``writes``. If any of that
fails the host calls :meth:`WindowDetector.drop` and the next use rebuilds
it from the log, so a bucket whose outputs did not all go out is completed
again and sends them (the latches and the alert stage drop a trigger sent
twice: one signal id).

State-log keys (all on partition 0), one codec (:func:`state_key`,
:func:`parse_state_key`):

* ``0:merger:`` progress: buckets emitted through, partitions' latest report;
* ``0:eval:<series>``: detector snapshots;
* ``0:pending:<start>:<partition>``: a partial of a bucket not yet emitted,
  or of one still amendable;
* ``0:emitted:<start>``: an emitted bucket some partition did not contribute
  to: who did;
* ``0:verdicts:<start>``: the detectors' verdicts on a detector window
  while one of its buckets may still be amended;
* ``0:bucket:<start>``: a complete bucket's topic counts, while a rule
  window may read it;
* ``0:latch:<rule>@<topic>``: a rule's latch (``<topic>/<word>`` for a
  hot word);
* ``0:hotwords:<key>``: a hot-word detector (``all``, ``topic:<name>``).

**Upgrading from 5-minute windows.** State written by a version that counted
in whole windows holds partials and deltas of ``window_seconds``: they are
read as buckets at their window's start (the counts are kept; their posts
count as if published in the window's first bucket).
"""

from __future__ import annotations

import functools
import importlib.resources
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from monitor.analysis.detection import (
    WindowEvaluator,
    WindowReport,
    build_trigger,
    point_verdicts,
)
from monitor.analysis.hotwordrules import HotWordRules
from monitor.analysis.hotwords import PRIOR_PACKAGE, PRIOR_RESOURCE, BackgroundPrior
from monitor.analysis.rulewindows import MONOTONE_KINDS, THRESHOLD_KINDS, RuleWindows
from monitor.analysis.tickets import AlertRule, Trigger
from monitor.analysis.tickets.model import BURST, NEGATIVE_SHARE
from monitor.analysis.windows import (
    DROPPED,
    OpenBuckets,
    TopicCounts,
    WindowAggregate,
    WindowMerger,
    window_start,
)
from monitor.records import PartitionReport, ReportKind

#: The merge runs on one partition of ``window-partials``; its state log too.
PARTITION = 0
#: Detector windows kept amendable (event time, in detector windows).
AMEND_DETECTOR_WINDOWS = 24


@functools.cache
def background_prior() -> BackgroundPrior:
    """Return the hot-word detectors' corpus background (read once)."""
    resource = importlib.resources.files(PRIOR_PACKAGE).joinpath(PRIOR_RESOURCE)
    return BackgroundPrior.from_bytes(resource.read_bytes())


class StateKind(StrEnum):
    """The kinds of the detect stage's state-log entries."""

    MERGER = "merger"
    EVAL = "eval"
    PENDING = "pending"
    EMITTED = "emitted"
    VERDICTS = "verdicts"
    BUCKET = "bucket"
    LATCH = "latch"
    HOTWORDS = "hotwords"


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
    """An evaluated detector window whose counts a late partial corrected.

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
    """A partial that came after its bucket could no longer be corrected."""

    partition: int
    window: WindowAggregate


@dataclass
class DetectResult:
    """What one batch of reports (or a timeout) produced, in publishing order.

    Attributes:
        windows: Detector windows evaluated, oldest first: their points,
            bursts and ``burst``/``emerging_keyword`` triggers.
        triggers: Threshold-rule triggers (on complete, amended or still
            open windows of buckets) and early ``burst`` triggers, in order.
        amended: Evaluated detector windows corrected by late partials.
        dropped: Partials too late to correct anything (counted, logged).
        gap_windows_skipped: Empty buckets of a long gap not emitted one by
            one (since the last result).
        writes: State-log entries to write last (``None`` deletes).

    """

    windows: list[WindowReport] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    amended: list[AmendedWindow] = field(default_factory=list)
    dropped: list[DroppedPartial] = field(default_factory=list)
    gap_windows_skipped: int = 0
    writes: dict[str, Any | None] = field(default_factory=dict)

    @property
    def all_triggers(self) -> list[Trigger]:
        """Every trigger: the windows' and the rule windows', in order."""
        return [t for w in self.windows for t in w.triggers] + self.triggers


class WindowDetector:
    """Merges partition reports and evaluates rules and windows; see the module.

    Args:
        partitions: Partitions of ``posts`` that report.
        bucket_seconds: Bucket length (what a partial covers).
        window_seconds: Detector window (a whole number of buckets).
        window_wait_seconds: Wall-clock silence after which a partition is
            given up on.
        early: Fire rules on open buckets' lower bounds (from snapshots).

    """

    def __init__(
        self,
        *,
        partitions: int,
        window_seconds: int,
        window_wait_seconds: float,
        bucket_seconds: int | None = None,
        early: bool = True,
    ) -> None:
        """Start unrestored."""
        bucket_seconds = bucket_seconds or window_seconds
        if window_seconds % bucket_seconds:
            raise ValueError(
                f"the detector window ({window_seconds}s) must be a whole number "
                f"of buckets ({bucket_seconds}s)"
            )
        self.partitions = partitions
        self.bucket_seconds = bucket_seconds
        self.window_seconds = window_seconds
        self.window_wait_seconds = window_wait_seconds
        self.early = early
        self.amend_seconds = AMEND_DETECTOR_WINDOWS * window_seconds
        self.merger: WindowMerger | None = None
        self.evaluator: WindowEvaluator | None = None
        self.rulewindows: RuleWindows | None = None
        self.hotwords: HotWordRules | None = None
        #: Words never hot (the rules file's ``hot_words: stop_words``).
        self.stop_words: frozenset[str] = frozenset()
        #: Watched topic -> its keywords (a hot word among them joins it).
        self.topic_words: Mapping[str, tuple[str, ...]] = {}
        self.snapshots = OpenBuckets()
        #: Keys in the log now (so that what is gone can be deleted).
        self.saved_keys: set[str] = set()
        #: detector window start -> {"complete", "verdicts"}, while amendable
        self.verdicts: dict[int, dict[str, Any]] = {}
        #: the merger's skipped gap windows already reported
        self.gap_windows_reported = 0
        #: buckets completed without some partition (not logged: after a
        #: restart a detector window open across it passes for complete)
        self.incomplete: set[int] = set()
        #: amendable buckets whose contributors changed (to log)
        self.touched: set[int] = set()

    @property
    def restored(self) -> bool:
        """True once :meth:`restore` rebuilt the state (and no drop since)."""
        return self.merger is not None and self.evaluator is not None

    def drop(self) -> None:
        """Forget the in-memory state; the host restores it from the log."""
        self.merger = self.evaluator = self.rulewindows = None
        self.hotwords = None
        self.snapshots = OpenBuckets()
        self.saved_keys = set()
        self.verdicts = {}
        self.gap_windows_reported = 0
        self.incomplete = set()
        self.touched = set()

    def _new_merger(self) -> WindowMerger:
        return WindowMerger(
            self.partitions,
            self.bucket_seconds,
            self.window_wait_seconds,
            amend_windows=self.amend_seconds // self.bucket_seconds,
        )

    def restore(self, entries: Iterable[tuple[str, Any]], now: float) -> None:
        """Rebuild from the state-log entries (any order); ``now`` is monotonic."""
        self.drop()
        merger = self._new_merger()
        evaluator = WindowEvaluator(self.window_seconds)
        rulewindows = RuleWindows(self.bucket_seconds, self.amend_seconds)
        hotwords = HotWordRules(self.bucket_seconds, background_prior())
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
                if "verdicts" in value:  # written before buckets
                    self.verdicts[int(rest)] = {
                        "complete": value["complete"],
                        "verdicts": value["verdicts"],
                    }
            elif kind is StateKind.VERDICTS:
                self.verdicts[int(rest)] = value
            elif kind in (StateKind.BUCKET, StateKind.LATCH):
                rulewindows.restore(kind.value, rest, value)
            elif kind is StateKind.HOTWORDS:
                hotwords.restore(rest, value)
            else:
                start, partition = (int(part) for part in rest.split(":"))
                pending.append((start, partition, value))
        through = merger.emitted_through
        # Amendable buckets whose emission's progress entry landed.
        emitted = {
            start: value
            for start, value in emitted.items()
            if through is not None and start <= through
        }
        partials: dict[int, list[WindowAggregate]] = defaultdict(list)
        for start, partition, value in pending:
            if start > merger.reported.get(partition, start - 1):
                # Logged by a batch whose progress entry did not land (a
                # crash amid its writes): its reports come again. Trusting
                # it would pass over the partials of that batch that were
                # not logged, and take them for copies when they came again.
                continue
            partial = WindowAggregate.from_dict(value).as_bucket(self.bucket_seconds)
            if start in emitted:
                partials[start].append(partial)
            else:
                merger.absorb(partition, partial, now)
        for start, value in emitted.items():
            merger.restore_emitted(start, value["partitions"], partials[start])
        evaluator.restore(detectors)
        self.merger, self.evaluator, self.rulewindows = merger, evaluator, rulewindows
        self.hotwords = hotwords

    def _state(self) -> tuple[WindowMerger, WindowEvaluator, RuleWindows]:
        if self.merger is None or self.evaluator is None or self.rulewindows is None:
            raise RuntimeError("the detector is not restored")
        return self.merger, self.evaluator, self.rulewindows

    def _hotwords(self) -> HotWordRules:
        if self.hotwords is None:
            raise RuntimeError("the detector is not restored")
        return self.hotwords

    # -- reports -------------------------------------------------------------

    def handle(
        self,
        reports: Iterable[PartitionReport],
        now: float,
        rules: Sequence[AlertRule],
        topics: Sequence[str],
    ) -> DetectResult:
        """Merge a batch of reports; evaluate what they complete or raise."""
        merger, _, _ = self._state()
        writes: dict[str, Any | None] = {}
        completed: list[tuple[WindowAggregate, bool]] = []
        amended: list[WindowAggregate] = []
        dropped: list[DroppedPartial] = []
        raised: set[str] = set()
        for report in reports:
            partition = report.partition
            if report.window is None:
                completed += merger.heartbeat(partition, report.active, now)
                continue
            if report.kind is ReportKind.SNAPSHOT:
                raised |= self._snapshot(merger, report, now)
                continue
            partial = report.window.as_bucket(self.bucket_seconds)
            outcome = merger.add(partition, partial, now)
            self.snapshots.closed(partial.start, partition)
            if outcome.accepted:
                key = state_key(StateKind.PENDING, partial.start, partition)
                writes[key] = partial.to_dict(bounded=False)
                raised |= set(partial.topics)
            if outcome.amended is not None and partial.posts:
                # (an empty share changes no count: nothing to rewrite)
                amended.append(outcome.amended)
            elif outcome.status == DROPPED:
                dropped.append(DroppedPartial(partition, partial))
            completed += outcome.completed
        result = self._finish(completed, writes, amended, rules, topics, raised)
        result.dropped = dropped
        return result

    def _snapshot(
        self, merger: WindowMerger, report: PartitionReport, now: float
    ) -> set[str]:
        """Keep an open bucket's snapshot; return the topics it raised."""
        assert report.window is not None
        start, partition = report.window.start, report.partition
        through = merger.emitted_through
        if report.window.size != self.bucket_seconds:
            return set()
        if through is not None and start <= through:
            return set()  # the bucket is out; its partial counts
        if merger.reported.get(partition, start - self.bucket_seconds) >= start:
            return set()  # that partition closed it: its partial counts
        merger.heard[partition] = now
        return self.snapshots.add(partition, report.window, report.offset)

    def tick(
        self, now: float, rules: Sequence[AlertRule], topics: Sequence[str]
    ) -> DetectResult | None:
        """Complete buckets whose missing partitions fell silent; None if none."""
        if not self.restored:
            return None
        completed = self._state()[0].completed(now)
        if not completed:
            return None
        return self._finish(completed, {}, [], rules, topics, set())

    # -- evaluation ----------------------------------------------------------

    def _complete_counts(self, start: int, topic: str) -> list[TopicCounts]:
        return self._state()[2].history.topic(start, topic)

    def _open_counts(self, start: int, topic: str) -> list[TopicCounts]:
        """Return a bucket's topic counts as known now (complete or a lower bound)."""
        merger, _, rulewindows = self._state()
        through = merger.emitted_through
        if through is not None and start <= through:
            return rulewindows.history.topic(start, topic)
        parts: list[TopicCounts] = []
        pending = merger.pending.get(start)
        closed: set[int] = set()
        if pending is not None:
            closed = pending.partitions
            counts = pending.aggregate.topics.get(topic)
            if counts is not None:
                parts.append(counts)
        parts += self.snapshots.topic(start, topic, skip=closed)
        return parts

    def _finish(
        self,
        completed: list[tuple[WindowAggregate, bool]],
        writes: dict[str, Any | None],
        amended: list[WindowAggregate],
        rules: Sequence[AlertRule],
        topics: Sequence[str],
        raised: set[str],
    ) -> DetectResult:
        merger, evaluator, rulewindows = self._state()
        result = DetectResult()
        result.gap_windows_skipped = (
            merger.skipped_gap_windows - self.gap_windows_reported
        )
        self.gap_windows_reported = merger.skipped_gap_windows
        threshold = [r for r in rules if r.kind in THRESHOLD_KINDS]
        window_rules = [r for r in rules if r.kind not in THRESHOLD_KINDS]
        size, step = self.window_seconds, self.bucket_seconds
        for bucket, complete in completed:
            self.snapshots.emitted_through(bucket.start)
            rulewindows.history.put(bucket)
            self.touched.add(bucket.start)
            if not complete:
                self.incomplete.add(bucket.start)
            result.triggers += rulewindows.completed(
                bucket.end, threshold, self._complete_counts
            )
            result.triggers += self._hotwords().completed(
                bucket, rules, rulewindows.gate, self.stop_words, self.topic_words
            )
            if bucket.end % size == 0:
                start = bucket.end - size
                window = rulewindows.history.window(start, size)
                whole = not any(
                    s in self.incomplete for s in range(start, bucket.end, step)
                )
                if evaluator.last_window is None and not window.posts:
                    # Before the first post: a partition's first close marks
                    # buckets it never had posts for. Not history: skipped,
                    # or the detectors would learn a quiet start.
                    continue
                report = evaluator.evaluate(window, window_rules, topics, whole)
                report.triggers = self._gate_window(report.triggers, window)
                result.windows.append(report)
                if any(s in merger.amendable for s in range(start, bucket.end, step)):
                    self.verdicts[start] = {
                        "complete": whole,
                        "verdicts": point_verdicts(report),
                    }
        self._amend(result, amended, threshold)
        if self.early and raised:
            result.triggers += self._early(raised, rules)
        self._writes(result, writes, rules)
        return result

    def _gate_window(
        self, triggers: list[Trigger], window: WindowAggregate
    ) -> list[Trigger]:
        """Pass a detector window's ``burst`` triggers through their latches."""
        _, _, rulewindows = self._state()
        out = []
        for trigger in triggers:
            if trigger.kind == BURST:
                verdict = rulewindows.gate(
                    trigger.rule,
                    trigger.topic,
                    window.end,
                    True,
                    True,
                    self.window_seconds,
                )
                if verdict != "fire":
                    continue
            out.append(trigger)
        return out

    def _amend(
        self,
        result: DetectResult,
        amended: list[WindowAggregate],
        threshold: Sequence[AlertRule],
    ) -> None:
        """Fold late partials into their buckets; re-run what read them."""
        merger, _, rulewindows = self._state()
        history = rulewindows.history
        through = merger.emitted_through
        assert through is not None or not amended
        windows: set[int] = set()
        for partial in amended:  # each the bucket with every partial so far
            history.put(partial)
            self.touched.add(partial.start)
            windows.add(window_start(partial.start, self.window_seconds))
            longest = rulewindows.longest(threshold)
            last = min(partial.start + longest, (through or 0) + self.bucket_seconds)
            for end in range(partial.end, last + 1, self.bucket_seconds):
                result.triggers += rulewindows.completed(
                    end, threshold, self._complete_counts
                )
        for start in sorted(windows):
            info = self.verdicts.get(start)
            if info is None:
                continue  # not evaluated yet: its evaluation will count it
            result.amended.append(
                AmendedWindow(
                    history.window(start, self.window_seconds),
                    complete=bool(info.get("complete"))
                    or not any(
                        s in merger.amendable
                        for s in range(
                            start, start + self.window_seconds, self.bucket_seconds
                        )
                    ),
                    verdicts=info.get("verdicts", {}),
                )
            )

    def _early(self, raised: set[str], rules: Sequence[AlertRule]) -> list[Trigger]:
        """Fire the rules a raised topic's open buckets already cross."""
        merger, evaluator, rulewindows = self._state()
        through = merger.emitted_through
        starts = sorted(
            s
            for s in {*self.snapshots.starts(), *merger.pending}
            if through is None or s > through
        )
        triggers: list[Trigger] = []
        mine = [r for r in rules if r.topic in raised]
        early_rules = [
            r for r in mine if r.kind in MONOTONE_KINDS or r.kind == NEGATIVE_SHARE
        ]
        for start in starts:
            end = start + self.bucket_seconds
            triggers += rulewindows.early(end, early_rules, self._open_counts)
        bursts = [r for r in mine if r.kind == BURST]
        if bursts and starts:
            latest = starts[-1]
            first = window_start(latest, self.window_seconds)
            for rule in bursts:
                parts = [
                    part
                    for s in range(
                        first, latest + self.bucket_seconds, self.bucket_seconds
                    )
                    for part in self._open_counts(s, rule.topic)
                ]
                posts = sum(part.posts for part in parts)
                crossed = evaluator.burst_crossed(rule, first, posts)
                if crossed is None:
                    continue
                end = first + self.window_seconds
                verdict = rulewindows.gate(
                    rule.name, rule.topic, end, True, False, self.window_seconds
                )
                if verdict != "fire":
                    continue
                merged = TopicCounts()
                for part in parts:
                    merged.merge(part)
                score, expected = crossed
                triggers.append(
                    build_trigger(
                        rule,
                        merged,
                        first,
                        end,
                        observed_value=score,
                        expected_value=expected,
                        burst_score=score,
                    )
                )
        return triggers

    # -- state log -----------------------------------------------------------

    def _writes(
        self,
        result: DetectResult,
        writes: dict[str, Any | None],
        rules: Sequence[AlertRule],
    ) -> None:
        merger, evaluator, rulewindows = self._state()
        through = merger.emitted_through
        if through is not None:
            rulewindows.prune(through + self.bucket_seconds, rules)
            horizon = through - self.amend_seconds
            self.incomplete = {s for s in self.incomplete if s >= horizon}
        for key, value in rulewindows.writes().items():
            kind, rest = key.split(":", 1)
            writes[state_key(StateKind(kind), rest)] = value
        for key, value in self._hotwords().writes().items():
            writes[state_key(StateKind.HOTWORDS, key)] = value
        # Amendable buckets: who contributed; verdicts of windows they are in.
        for start in sorted(self.touched):
            record = merger.amendable.get(start)
            if record is not None:
                writes[state_key(StateKind.EMITTED, start)] = {
                    "partitions": sorted(record.partitions)
                }
        self.touched = set()
        for start in list(self.verdicts):
            if not any(
                s in merger.amendable
                for s in range(start, start + self.window_seconds, self.bucket_seconds)
            ):
                del self.verdicts[start]
        for report in result.windows:
            if report.window_start in self.verdicts:
                writes[state_key(StateKind.VERDICTS, report.window_start)] = (
                    self.verdicts[report.window_start]
                )
        for key in [*self.saved_keys, *writes]:
            kind, rest = parse_state_key(key)
            if through is None:
                continue
            if kind in (StateKind.PENDING, StateKind.EMITTED):
                start = int(rest.split(":")[0])
                if start <= through and start not in merger.amendable:
                    writes[key] = None
            elif kind is StateKind.VERDICTS and int(rest) not in self.verdicts:
                writes[key] = None
        if result.windows:
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
