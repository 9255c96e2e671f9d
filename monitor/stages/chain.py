"""Count and detect in one process, over a list of scored posts: no Kafka, no Faust.

:func:`count_and_detect` drives the same components the workers drive
(:class:`~monitor.stages.count.WindowCounter`, then
:class:`~monitor.stages.detect.WindowDetector`), with the posts spread over
partitions by a stable hash of their id (as Kafka spreads keyed records, though
not with Kafka's hash), every partition caught up, and each partition closed
once its posts are counted. No partition is ever given up on here (no wall
clock runs), so every window is complete. It is what a
backtest runs over history, and what the tests compare the workers with.
State-log writes are applied to a :class:`~monitor.stages.state.MemoryStateStore`
image, so a caller can also restore from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from monitor.analysis.detection import WindowReport
from monitor.analysis.tickets import AlertRule, Trigger
from monitor.analysis.windows import PostFacts, post_hash
from monitor.records import PartitionReport, ScoredPost
from monitor.stages.count import CountSettings, WindowCounter
from monitor.stages.detect import AmendedWindow, DroppedPartial, WindowDetector
from monitor.stages.state import encode_state


@dataclass
class ChainResult:
    """What :func:`count_and_detect` produced.

    Attributes:
        windows: Every complete detector window, oldest first, with its
            points, bursts and ``burst``/``emerging_keyword`` triggers.
        triggers: Threshold-rule triggers (and early bursts), in order.
        amended: Emitted windows corrected later (none when every partition
            reports in order, as here).
        dropped: Partials too late to correct their window (none here).
        reports: The partition reports the count stage sent, in order.
        late: Posts too late for their window.
        duplicates: Later copies of posts already counted.
        state: The state logs as they would be stored: ``"count"`` and
            ``"detect"`` -> partition -> key -> encoded value.

    """

    windows: list[WindowReport] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    amended: list[AmendedWindow] = field(default_factory=list)
    dropped: list[DroppedPartial] = field(default_factory=list)
    reports: list[PartitionReport] = field(default_factory=list)
    late: int = 0
    duplicates: int = 0
    state: dict[str, dict[int, dict[str, bytes]]] = field(
        default_factory=lambda: {"count": {}, "detect": {}}
    )


def partition_of(post_id: str, partitions: int) -> int:
    """Return the partition a post goes to (stable across runs, by its id)."""
    return post_hash(post_id) % partitions


def count_and_detect(
    posts: Iterable[ScoredPost | Mapping[str, Any]],
    *,
    settings: CountSettings,
    rules: Sequence[AlertRule] = (),
    topics: Sequence[str] = (),
    partitions: int = 1,
    batch_size: int = 500,
    window_seconds: int | None = None,
    stop_words: Iterable[str] = (),
    detect_state: Iterable[tuple[str, Any]] = (),
    topic_words: Mapping[str, Sequence[str]] | None = None,
) -> ChainResult:
    """Count ``posts`` into windows and evaluate every window, in one process.

    Args:
        posts: Scored posts (records or their decoded JSON), in the order
            they arrived on ``posts``.
        settings: Window length, grace and dedup settings (the wall-clock
            ones do not matter here: every partition is caught up).
        rules: Alert rules to check on each window.
        topics: Watched topic names.
        partitions: Partitions of ``posts`` to spread the posts over.
        batch_size: Posts per partition handed to the counter at a time.
        window_seconds: The detector window (a whole number of buckets;
            default: one bucket).
        stop_words: Words never hot (the rules file's ``hot_words:
            stop_words``).
        topic_words: Watched topic -> keywords (a hot word among them
            joins the topic's incident).
        detect_state: The merge's state-log entries to go on from (decoded,
            as a live worker left them; a backfill continues them). Their
            image is the start of ``state["detect"][0]``.

    Returns:
        The windows, reports and counts; see :class:`ChainResult`.

    """
    result = ChainResult()
    window_seconds = (
        window_seconds or settings.window_seconds or settings.bucket_seconds
    )
    # The last idle close completes the detector window it falls in.
    counter = WindowCounter(replace(settings, window_seconds=window_seconds))
    detector = WindowDetector(
        partitions=partitions,
        bucket_seconds=settings.bucket_seconds,
        window_seconds=window_seconds,
        # Every partition reports in order here: never give one up.
        window_wait_seconds=float("inf"),
    )
    entries = list(detect_state)
    detector.restore(entries, 0.0)
    detector.stop_words = frozenset(stop_words)
    detector.topic_words = {k: tuple(v) for k, v in (topic_words or {}).items()}
    result.state["detect"][0] = {key: encode_state(value) for key, value in entries}
    for partition in range(partitions):
        counter.restore(partition, [], 0.0)
    pending: dict[int, list[tuple[int, PostFacts]]] = {
        p: [] for p in range(partitions)
    }
    offsets = [0] * partitions

    def flush(partition: int) -> None:
        batch = pending[partition]
        if not batch:
            return
        pending[partition] = []
        counted = counter.count(partition, batch, 0.0, caught_up=True)
        result.late += counted.late
        result.duplicates += counted.duplicates
        _apply(result.state["count"], partition, counted.writes)
        _detect(counted.reports)

    def _detect(reports: list[PartitionReport]) -> None:
        result.reports += reports
        found = detector.handle(reports, 0.0, rules, topics)
        result.windows += found.windows
        result.triggers += found.triggers
        result.amended += found.amended
        result.dropped += found.dropped
        _apply(result.state["detect"], 0, found.writes)

    for post in posts:
        facts = PostFacts.from_scored(post)
        partition = partition_of(facts.post_id, partitions)
        pending[partition].append((offsets[partition], facts))
        offsets[partition] += 1
        if len(pending[partition]) >= batch_size:
            flush(partition)
    for partition in range(partitions):
        flush(partition)
    # Every partition is idle now: close what is open, then say so.
    for partition in range(partitions):
        closed = counter.idle_close(partition, float("inf"), caught_up=True)
        if closed is not None:
            _apply(result.state["count"], partition, closed.writes)
            _detect(closed.reports)
    _detect([PartitionReport.heartbeat(p, False) for p in range(partitions)])
    return result


def _apply(
    logs: dict[int, dict[str, bytes]],
    partition: int,
    writes: Mapping[str, Any | None],
) -> None:
    log = logs.setdefault(partition, {})
    for key, value in writes.items():
        if value is None:
            log.pop(key, None)
        else:
            log[key] = encode_state(value)
