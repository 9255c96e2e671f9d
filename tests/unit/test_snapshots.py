"""Open-bucket snapshots: replaced by the highest offset, never added.

:class:`~monitor.analysis.windows.OpenBuckets` alone (a retried batch, a
restart that replays, a stale owner), then the count stage's reports and the
detect stage end to end: snapshots from two partitions fire a rule before
its bucket closes, exactly once per signal, however the partitions repeat
themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.rulewindows import rule_value
from monitor.analysis.tickets.model import (
    NEGATIVE_SHARE,
    AlertRule,
    RuleKind,
    Trigger,
)
from monitor.analysis.windows import (
    OpenBuckets,
    PostFacts,
    TopicCounts,
    WindowAggregate,
)
from monitor.records import PartitionReport, ReportKind
from monitor.stages.count import CountSettings, WindowCounter, snapshot_reports
from monitor.stages.detect import DetectResult, WindowDetector
from monitor.stages.state import decode_state, encode_state
from tests.support import assert_each_signal_resolved

T0 = 1_709_510_400  # 2024-03-04 00:00 UTC
BUCKET = 60


def _snapshot(start: int, **topics: int) -> WindowAggregate:
    """A bucket's snapshot: ``topic=negative posts`` so far."""
    return WindowAggregate(
        start,
        BUCKET,
        posts=sum(topics.values()),
        negative=sum(topics.values()),
        topics={
            name: TopicCounts(posts=count, negative=count)
            for name, count in topics.items()
        },
    )


def _held(buckets: OpenBuckets, start: int, topic: str) -> list[int]:
    return sorted(counts.negative for counts in buckets.topic(start, topic))


# --- OpenBuckets ---------------------------------------------------------------


def test_a_later_snapshot_replaces_the_earlier_one() -> None:
    buckets = OpenBuckets()
    assert buckets.add(0, _snapshot(T0, a=3), offset=5) == {"a"}
    assert buckets.add(0, _snapshot(T0, a=5), offset=9) == {"a"}
    assert _held(buckets, T0, "a") == [5]  # replaced, not 3 + 5
    assert len(buckets) == 1


def test_a_retried_batch_changes_nothing() -> None:
    buckets = OpenBuckets()
    buckets.add(0, _snapshot(T0, a=3), offset=5)
    buckets.add(0, _snapshot(T0, a=5), offset=9)
    # the batch of offset 9 handled again: the same counts at the same offset
    buckets.add(0, _snapshot(T0, a=5), offset=9)
    # and the earlier batch's report delivered again
    assert buckets.add(0, _snapshot(T0, a=3), offset=5) == set()
    assert _held(buckets, T0, "a") == [5]
    assert len(buckets) == 1


def test_a_restart_that_replays_from_an_earlier_offset_loses_until_it_passes() -> None:
    buckets = OpenBuckets()
    buckets.add(0, _snapshot(T0, a=5), offset=9)
    # restarted from offset 6: its snapshots of offsets 7 and 8 are older
    assert buckets.add(0, _snapshot(T0, a=4), offset=7) == set()
    assert buckets.add(0, _snapshot(T0, a=5), offset=8) == set()
    assert _held(buckets, T0, "a") == [5]
    # past where it was: its snapshot counts again
    assert buckets.add(0, _snapshot(T0, a=7), offset=12) == {"a"}
    assert _held(buckets, T0, "a") == [7]


def test_a_stale_owners_older_snapshot_loses() -> None:
    buckets = OpenBuckets()
    buckets.add(1, _snapshot(T0, a=9), offset=20)  # the new owner
    assert buckets.add(1, _snapshot(T0, a=8), offset=15) == set()  # the old one
    assert _held(buckets, T0, "a") == [9]


def test_partitions_and_topics_are_held_apart() -> None:
    buckets = OpenBuckets()
    # partition 0's snapshot split by topic over two reports, one offset
    buckets.add(0, _snapshot(T0, a=2), offset=9)
    buckets.add(0, _snapshot(T0, b=4), offset=9)
    # a later report of topic a only: b stays as of offset 9
    buckets.add(0, _snapshot(T0, a=3), offset=12)
    # partition 1 is another series of offsets: it never competes with 0
    buckets.add(1, _snapshot(T0, a=1), offset=2)
    buckets.add(1, _snapshot(T0 + BUCKET, a=6), offset=3)
    assert _held(buckets, T0, "a") == [1, 3]
    assert _held(buckets, T0, "b") == [4]
    assert _held(buckets, T0 + BUCKET, "a") == [6]
    assert _held(buckets, T0, "a") == [1, 3]
    assert [c.negative for c in buckets.topic(T0, "a", skip=[0])] == [1]
    assert buckets.starts() == [T0, T0 + BUCKET]
    assert len(buckets) == 4


def test_closed_forgets_one_partitions_snapshots_of_one_bucket() -> None:
    buckets = OpenBuckets()
    buckets.add(0, _snapshot(T0, a=2, b=1), offset=9)
    buckets.add(1, _snapshot(T0, a=1), offset=2)
    buckets.add(0, _snapshot(T0 + BUCKET, a=6), offset=11)
    buckets.closed(T0, 0)  # partition 0's partial of T0 is in
    assert _held(buckets, T0, "a") == [1]
    assert _held(buckets, T0, "b") == []
    assert _held(buckets, T0 + BUCKET, "a") == [6]  # its later bucket stays
    buckets.closed(T0, 1)
    assert buckets.starts() == [T0 + BUCKET]  # nothing left of T0
    buckets.closed(T0 + 5 * BUCKET, 0)  # nothing held: nothing happens
    assert len(buckets) == 1


def test_emitted_through_forgets_every_snapshot_up_to_the_bucket() -> None:
    buckets = OpenBuckets()
    for minute in range(4):
        buckets.add(0, _snapshot(T0 + minute * BUCKET, a=1), offset=minute)
        buckets.add(1, _snapshot(T0 + minute * BUCKET, a=1), offset=minute)
    buckets.emitted_through(T0 + BUCKET)
    assert buckets.starts() == [T0 + 2 * BUCKET, T0 + 3 * BUCKET]
    assert len(buckets) == 4
    buckets.emitted_through(T0 + 10 * BUCKET)
    assert buckets.starts() == [] and len(buckets) == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 30), st.sampled_from("ab")),
        min_size=1,
        max_size=40,
    )
)
def test_any_order_of_deliveries_holds_each_partitions_latest_view(
    deliveries: list[tuple[int, int, str]],
) -> None:
    """Cumulative counts (a function of the offset), delivered in any order,
    any number of times: what is held is each partition's newest view."""

    def count(partition: int, offset: int, topic: str) -> int:
        return offset * (partition + 1) + (topic == "b")  # grows with offset

    buckets = OpenBuckets()
    newest: dict[tuple[int, str], int] = {}
    for partition, offset, topic in deliveries:
        buckets.add(
            partition, _snapshot(T0, **{topic: count(partition, offset, topic)}), offset
        )
        key = (partition, topic)
        newest[key] = max(newest.get(key, -1), offset)
    for topic in "ab":
        expected = sorted(
            count(p, offset, t) for (p, t), offset in newest.items() if t == topic
        )
        assert _held(buckets, T0, topic) == expected


# --- the count stage's reports ---------------------------------------------------

COUNT = CountSettings(
    bucket_seconds=BUCKET,
    grace_seconds=120,
    idle_close_seconds=1,
    window_wait_seconds=30,
)


def _post(
    n: int,
    second: float,
    *,
    topics: Sequence[str] = ("a",),
    negative: bool = True,
    author: str | None = "u",
    prefix: str = "p",
    text: str = "",
) -> PostFacts:
    return PostFacts(
        post_id=f"{prefix}{n}",
        published=T0 + second,
        negative=negative,
        topics=tuple(topics),
        keywords=("漏水",),
        author=author,
        excerpt=text,
    )


def _counter(
    partitions: Iterable[int], settings: CountSettings = COUNT
) -> WindowCounter:
    counter = WindowCounter(settings)
    for partition in partitions:
        counter.restore(partition, [], 0.0)
    return counter


def test_a_batchs_reports_are_partials_then_snapshots_then_the_heartbeat() -> None:
    counter = _counter([0])
    posts = [
        _post(0, 5),  # minute 0
        _post(1, 10, topics=()),  # minute 0, no watched topic
        _post(2, 4 * 60 + 1),  # minute 4: the watermark passes minute 1's end
        _post(3, 3 * 60 + 7),  # minute 3
        _post(4, 2 * 60 + 30, topics=()),  # minute 2: open, no watched topic
    ]
    result = counter.count(0, list(enumerate(posts)), 0.0, caught_up=True)
    kinds = [report.kind for report in result.reports]
    assert kinds == [
        *[ReportKind.PARTIAL] * result.closed,
        *[ReportKind.SNAPSHOT] * (len(kinds) - result.closed - 1),
        ReportKind.HEARTBEAT,
    ]
    partials = [r.window for r in result.reports if r.kind is ReportKind.PARTIAL]
    assert partials and partials[0] is not None and partials[0].start == T0
    snapshots = [r for r in result.reports if r.kind is ReportKind.SNAPSHOT]
    # open buckets the batch counted watched posts in; not minute 2
    assert [r.window.start for r in snapshots if r.window] == [
        T0 + 3 * BUCKET,
        T0 + 4 * BUCKET,
    ]
    assert {r.offset for r in snapshots} == {4}  # the batch's last offset
    assert result.reports[-1].active is True
    # the next batch: the heartbeat said active already, none again
    more = counter.count(0, [(5, _post(5, 4 * 60 + 2))], 0.0, caught_up=True)
    assert [r.kind for r in more.reports] == [ReportKind.SNAPSHOT]
    (latest,) = more.reports
    assert latest.offset == 5 and latest.window is not None
    assert latest.window.topics["a"].negative == 2  # cumulative: the bucket so far


def test_no_snapshots_when_they_are_off() -> None:
    settings = CountSettings(
        bucket_seconds=BUCKET,
        grace_seconds=120,
        idle_close_seconds=1,
        window_wait_seconds=30,
        snapshots=False,
    )
    counter = _counter([0], settings)
    result = counter.count(0, [(0, _post(0, 5))], 0.0, caught_up=True)
    assert [r.kind for r in result.reports] == [ReportKind.HEARTBEAT]


def _topic_bytes(report: PartitionReport) -> int:
    assert report.window is not None
    return sum(
        len(orjson.dumps(counts.to_dict(bounded=True)))
        for counts in report.window.topics.values()
    )


def test_snapshot_reports_are_split_by_topic_under_the_byte_limit() -> None:
    text = "空调有异味，投诉多次无人处理。" * 6
    topics = [f"t{n}" for n in range(7)]
    posts = [
        _post(n, n % 50, topics=[topics[n % 7]], author=f"u{n}", text=text)
        for n in range(70)
    ]
    one_topic = max(
        len(orjson.dumps(TopicCounts().to_dict())),
        *(
            len(orjson.dumps(_counts_of(posts, name).to_dict(bounded=True)))
            for name in topics
        ),
    )
    limit = 2 * one_topic + 10  # two topics a report
    settings = CountSettings(
        bucket_seconds=BUCKET,
        grace_seconds=120,
        idle_close_seconds=1,
        window_wait_seconds=30,
        snapshot_max_bytes=limit,
    )
    counter = _counter([0], settings)
    result = counter.count(0, list(enumerate(posts)), 0.0, caught_up=True)
    snapshots = [r for r in result.reports if r.kind is ReportKind.SNAPSHOT]
    assert len(snapshots) == 4  # 2 + 2 + 2 + 1 topics
    seen: list[str] = []
    for report in snapshots:
        assert report.window is not None
        assert (report.window.start, report.offset, report.partition) == (T0, 69, 0)
        assert _topic_bytes(report) <= limit
        assert report.window.posts == 70  # the bucket's totals on each part
        seen += report.window.topics
        # and each survives the wire
        decoded = PartitionReport.decode(report.encode())
        assert decoded.window is not None and decoded.offset == 69
        assert set(decoded.window.topics) == set(report.window.topics)
    assert sorted(seen) == topics  # every topic once
    # the merge holds every part: one topic's counts each
    buckets = OpenBuckets()
    for report in snapshots:
        assert report.window is not None
        buckets.add(report.partition, report.window, report.offset)
    assert len(buckets) == 7
    assert [c.negative for c in buckets.topic(T0, "t3")] == [10]


def test_a_topic_larger_than_the_limit_goes_alone() -> None:
    bucket = WindowAggregate(T0, BUCKET)
    for n in range(30):
        bucket.add(_post(n, n, topics=["big"], author=f"u{n}", text="x" * 100))
    bucket.add(_post(99, 1, topics=["small"]))
    reports = snapshot_reports(0, bucket, 30, max_bytes=200)
    assert [sorted(r.window.topics) for r in reports if r.window] == [
        ["big"],
        ["small"],
    ]


def _counts_of(posts: Iterable[PostFacts], topic: str) -> TopicCounts:
    counts = TopicCounts()
    for post in posts:
        if topic in post.topics:
            counts.add(post)
    return counts


# --- end to end: count -> detect --------------------------------------------------

RULES = [
    AlertRule(name="volume", topic="a", kind=RuleKind.NEGATIVE_VOLUME, threshold=6),
    AlertRule(
        name="share",
        topic="a",
        kind=RuleKind.NEGATIVE_SHARE,
        threshold=0.5,
        min_volume=4,
    ),
    AlertRule(
        name="repeat",
        topic="a",
        kind=RuleKind.REPEAT_COMPLAINTS,
        threshold=3,
        within_seconds=600,
    ),
]


class Worker:
    """One count worker owning some partitions, with its own state log."""

    def __init__(self, partitions: Sequence[int]) -> None:
        self.partitions = list(partitions)
        self.log: dict[int, dict[str, Any]] = {p: {} for p in partitions}
        self.counter = _counter(partitions)

    def count(
        self, partition: int, batch: list[tuple[int, PostFacts]]
    ) -> list[PartitionReport]:
        result = self.counter.count(partition, batch, 0.0, caught_up=True)
        for key, value in result.writes.items():  # written before sending
            if value is None:
                self.log[partition].pop(key, None)
            else:
                self.log[partition][key] = json.loads(json.dumps(value))
        if batch:
            self.counter.advance(partition, batch[-1][0] + 1, 0.0)
        return result.reports

    def restart(self) -> list[PartitionReport]:
        """A new process: rebuilt from the log; the last close sent again."""
        self.counter = WindowCounter(COUNT)
        unsent = []
        for partition in self.partitions:
            unsent += self.counter.restore(
                partition, list(self.log[partition].items()), 0.0
            )
        return unsent

    def close(self) -> list[PartitionReport]:
        reports = []
        for partition in self.partitions:
            closed = self.counter.idle_close(partition, float("inf"), caught_up=True)
            if closed is not None:
                reports += closed.reports
            reports.append(PartitionReport.heartbeat(partition, False))
        return reports


class Merge:
    """The detect stage with its state log, recording what it fired."""

    def __init__(self, partitions: int) -> None:
        self.detector = WindowDetector(
            partitions=partitions,
            bucket_seconds=BUCKET,
            window_seconds=300,
            window_wait_seconds=30,
        )
        self.detector.restore([], 0.0)
        self.fired: list[Trigger] = []
        self.log: dict[str, bytes] = {}
        self.now = 0.0

    def _done(self, result: DetectResult | None) -> list[Trigger]:
        if result is None:
            return []
        self.fired += result.all_triggers  # published, then logged
        for key, value in result.writes.items():
            if value is None:
                self.log.pop(key, None)
            else:
                self.log[key] = encode_state(value)
        return result.all_triggers

    def handle(self, reports: Sequence[PartitionReport]) -> list[Trigger]:
        return self._done(self.detector.handle(reports, self.now, RULES, ["a"]))

    def silence(self, seconds: float) -> list[Trigger]:
        """Let wall time pass: partitions not heard from are given up on."""
        self.now += seconds
        return self._done(self.detector.tick(self.now, RULES, ["a"]))

    def restart(self) -> None:
        """A new merge process: rebuilt from the log (snapshots are lost)."""
        self.detector.drop()
        self.detector.restore(
            [(key, decode_state(key, raw)) for key, raw in self.log.items()], self.now
        )

    def lower_bound(self, start: int) -> int:
        return sum(c.negative for c in self.detector._open_counts(start, "a"))


def _signals(triggers: Iterable[Trigger]) -> list[tuple[str, bool, bool]]:
    return [(t.rule, t.provisional, t.retracted) for t in triggers]


def test_two_partitions_a_restart_and_a_stale_owner_fire_each_signal_once() -> None:
    # Eight negative posts by one author in minute 0, four per partition.
    first = [(n, _post(n, 2 * n, prefix="x")) for n in range(4)]
    second = [(n, _post(n, 2 * n + 1, prefix="y")) for n in range(4)]
    a, b = Worker([0]), Worker([1])
    merge = Merge(2)

    assert merge.handle(a.count(0, first[:2])) == []  # 2 of 6
    assert merge.lower_bound(T0) == 2
    # partition 1: 3 more -> 5 posts, all negative, one author. The share
    # (provisional) and the repeat rule fire on the lower bound; the volume
    # rule (6) not yet.
    sent = b.count(1, second[:3])
    assert _signals(merge.handle(sent)) == [
        ("share", True, False),
        ("repeat", False, False),
    ]
    assert merge.lower_bound(T0) == 5
    # the same reports delivered again (a retried batch): nothing
    assert merge.handle(sent) == []
    assert merge.lower_bound(T0) == 5

    # partition 1's worker restarts and replays from offset 0: the posts it
    # counted are skipped (no snapshot), then offset 3 is new
    assert b.restart() == []
    assert merge.handle(b.count(1, second[:3])) == []
    assert merge.lower_bound(T0) == 5
    replayed = b.count(1, second[3:])
    assert [r.offset for r in replayed if r.kind is ReportKind.SNAPSHOT] == [3]
    (volume,) = merge.handle(replayed)  # 2 + 4 = 6: the volume rule, early
    assert (volume.rule, volume.observed_value) == ("volume", 6)
    assert volume.crossing_post_id == "y3"
    # the stale owner's older snapshot comes late: it loses
    assert merge.handle(sent) == []
    assert merge.lower_bound(T0) == 6

    # partition 0 catches up: 8, latched, nothing new
    assert merge.handle(a.count(0, first[2:])) == []
    assert merge.lower_bound(T0) == 8
    # both go idle: the bucket closes, the rules run on the complete window
    closing = merge.handle(a.close() + b.close())
    assert _signals(closing) == [("share", False, False)]  # the confirmation
    assert merge.detector.merger is not None
    assert merge.detector.merger.emitted_through == T0
    assert not merge.detector.snapshots.buckets

    ids = [t.signal_key for t in merge.fired if not t.provisional]
    assert len(ids) == len(set(ids)) == 3  # volume, repeat, share confirmed
    end = T0 + BUCKET
    assert sorted(ids) == [f"{rule}@a@{end}" for rule in ("repeat", "share", "volume")]
    provisional = [t for t in merge.fired if t.provisional]
    assert [t.signal_id for t in provisional] == [f"share@a@{end}"]
    # each was sent before its bucket closed: the early firing is the signal
    assert {t.rule for t in merge.fired[:3]} == {"share", "repeat", "volume"}


def test_a_restart_whose_last_batch_was_not_logged_replays_the_same_snapshot() -> None:
    # The write of partition 1's last batch did not land: the restored
    # ledger replays it and reports the same counts at the same offset.
    posts = [(n, _post(n, n, prefix="y")) for n in range(6)]
    worker, merge = Worker([1]), Merge(2)
    assert merge.handle(worker.count(1, posts[:2])) == []
    saved = dict(worker.log[1])
    fired = merge.handle(worker.count(1, posts[2:]))  # 6 negative: all rules
    assert {t.rule for t in fired} == {"volume", "share", "repeat"}
    worker.log[1] = saved  # ... as if the batch's writes were lost
    worker.restart()
    again = worker.count(1, posts[2:])
    assert [r.offset for r in again if r.kind is ReportKind.SNAPSHOT] == [5]
    assert merge.handle(again) == []
    assert merge.lower_bound(T0) == 6


def test_snapshots_of_a_closed_or_emitted_bucket_are_ignored() -> None:
    worker, merge = Worker([0]), Merge(1)
    early = worker.count(0, [(0, _post(0, 1)), (1, _post(1, 2))])
    merge.handle(early)
    # a post four minutes later closes minute 0 (grace two minutes)
    merge.handle(worker.count(0, [(2, _post(2, 4 * 60 + 1, negative=False))]))
    assert merge.detector.merger is not None
    through = merge.detector.merger.emitted_through
    assert through is not None and through >= T0
    assert T0 not in merge.detector.snapshots.buckets
    # minute 0's snapshot delivered late: the partial counts, not it
    merge.handle(early)
    assert T0 not in merge.detector.snapshots.buckets


@pytest.mark.parametrize("partitions", [1, 2, 3])
def test_the_close_after_early_firings_adds_only_share_confirmations(
    partitions: int,
) -> None:
    # Twenty negative posts (four authors) over minutes 0-2, spread over the
    # partitions one by one: early firings, then at the close nothing but the
    # share's confirmation, whatever the partitions.
    workers = [Worker([p]) for p in range(partitions)]
    merge = Merge(partitions)
    offsets = [0] * partitions
    for n in range(20):
        partition = n % partitions
        post = _post(n, 9 * n, author=f"u{n % 4}")
        merge.handle(workers[partition].count(partition, [(offsets[partition], post)]))
        offsets[partition] += 1
    before = len(merge.fired)
    assert before and all(
        t.provisional or t.kind != NEGATIVE_SHARE for t in merge.fired
    )
    closing = merge.handle([r for w in workers for r in w.close()])
    early_ids = {t.signal_id for t in merge.fired[:before]}
    for trigger in closing:
        if trigger.signal_id in early_ids:
            assert trigger.kind == NEGATIVE_SHARE and not trigger.provisional
    keys = [(t.signal_id, t.provisional, t.retracted) for t in merge.fired]
    assert len(keys) == len(set(keys))


@st.composite
def _noisy_runs(draw: st.DrawFn) -> tuple[int, list[PostFacts], list[Any]]:
    """Posts at most a minute out of order (none late), partitions, a script."""
    partitions = draw(st.integers(1, 3))
    silences = draw(st.booleans())
    count = draw(st.integers(1, 30))
    posts = []
    for n in range(count):
        second = draw(st.integers(0, 8 * 60))
        arrival = second + draw(st.integers(0, 60))
        posts.append(
            (
                arrival,
                _post(
                    n,
                    second,
                    negative=draw(st.booleans()),
                    author=draw(st.sampled_from(["u", "v", "w"])),
                ),
            )
        )
    posts.sort(key=lambda item: item[0])
    script = draw(
        st.lists(
            st.tuples(
                st.integers(0, partitions - 1),
                st.sampled_from(
                    ["batch", "batch", "retry", "restart", "lost", "stale", "merge"]
                    + (["silence"] if silences else [])
                ),
                st.integers(1, 4),
            ),
            max_size=60,
        )
    )
    return partitions, [post for _, post in posts], script


@settings(max_examples=60, deadline=None)
@given(_noisy_runs())
def test_retries_restarts_and_stale_snapshots_never_fire_a_signal_twice(
    run: tuple[int, list[PostFacts], list[Any]],
) -> None:
    """Whatever the count workers repeat, each signal fires once, early
    monotone firings hold at the close, and the buckets count every post once.

    Script steps: ``batch`` (count and send the next posts), ``retry`` (send
    the last batch's reports again), ``restart`` (rebuild from the log and
    replay from an earlier offset), ``lost`` (a batch whose writes did not
    land: not sent; rebuilt and counted again), ``stale`` (an old snapshot
    of the partition delivered late), ``merge`` (the merge restarts from its
    log), ``silence`` (wall time passes: the merge gives up on partitions it
    has not heard from, and their partials amend the buckets later).
    """
    partitions, posts, script = run
    queues: list[list[tuple[int, PostFacts]]] = [[] for _ in range(partitions)]
    for n, post in enumerate(posts):
        queue = queues[n % partitions]
        queue.append((len(queue), post))
    done = [0] * partitions  # posts of each queue counted and logged
    workers = [Worker([p]) for p in range(partitions)]
    merge = Merge(partitions)
    last: list[list[PartitionReport]] = [[] for _ in range(partitions)]
    sent: list[list[PartitionReport]] = [[] for _ in range(partitions)]
    early: list[Trigger] = []

    def handle(reports: list[PartitionReport] | None) -> None:
        fired = merge.handle(reports) if reports is not None else merge.silence(31)
        merger = merge.detector.merger
        assert merger is not None
        through = merger.emitted_through
        for trigger in fired:
            end = int(trigger.window_end.timestamp())
            if through is None or end - BUCKET > through:
                early.append(trigger)

    steps = iter(script)
    while any(done[p] < len(queues[p]) for p in range(partitions)):
        p, action, size = next(steps, (None, "batch", 4))
        if p is None or done[p] >= len(queues[p]):
            p = next(q for q in range(partitions) if done[q] < len(queues[q]))
        worker, batch = workers[p], queues[p][done[p] : done[p] + size]
        if action == "batch":
            last[p] = worker.count(p, batch)
            done[p] += len(batch)
            sent[p] += [r for r in last[p] if r.kind is ReportKind.SNAPSHOT]
            handle(last[p])
        elif action == "retry":
            handle(last[p])
        elif action == "restart":
            handle(worker.restart())
            done[p] = max(0, done[p] - size)  # replay from an earlier offset
        elif action == "lost":
            saved = dict(worker.log[p])
            worker.count(p, batch)  # its writes do not all land: nothing sent
            worker.log[p] = saved
            handle(worker.restart())
        elif action == "merge":
            merge.restart()
        elif action == "silence":
            # (not before the first bucket is out: see the cold-start test)
            if merge.detector.merger and merge.detector.merger.emitted_through:
                handle(None)
        elif sent[p]:  # stale
            handle([sent[p][size % len(sent[p])]])
    handle([r for worker in workers for r in worker.close()])

    detector = merge.detector
    assert detector.merger is not None and not detector.merger.pending
    # each bucket counted every post once
    expected: dict[int, list[int]] = {}
    for post in posts:
        start = int(post.published // BUCKET) * BUCKET
        entry = expected.setdefault(start, [0, 0])
        entry[0] += 1
        entry[1] += post.negative
    rulewindows = detector.rulewindows
    assert rulewindows is not None
    held = {
        start: [bucket.topics["a"].posts, bucket.topics["a"].negative]
        for start, bucket in rulewindows.history.buckets.items()
    }
    assert held == expected
    # each signal once (a share: provisional, then confirmed or withdrawn)
    assert_each_signal_resolved(merge.fired)
    # a monotone rule fired on a lower bound: its window closed at or above
    rules = {rule.name: rule for rule in RULES}
    for trigger in early:
        rule = rules[trigger.rule]
        if rule.kind != NEGATIVE_SHARE:
            final = rule_value(
                rule,
                int(trigger.window_end.timestamp()),
                BUCKET,
                rulewindows.history.topic,
            )
            assert final.value >= rule.threshold


def test_a_partition_given_up_on_at_cold_start_still_counts_its_first_bucket() -> None:
    # Partition 0 counts two posts of minute 0 and falls silent; partition 1
    # closes minute 1 after the merge's wait: the merge emits minute 1
    # without partition 0 (its first bucket ever). Partition 0's partial of
    # minute 0 then comes: it is before the first bucket emitted, not
    # amendable, and dropped; minute 0's posts are never counted.
    a, b = Worker([0]), Worker([1])
    merge = Merge(2)
    merge.handle(a.count(0, [(0, _post(0, 0)), (1, _post(1, 10))]))
    merge.now += 31
    merge.handle(b.count(1, [(0, _post(2, 60)), (1, _post(3, 240))]))
    assert merge.detector.merger is not None
    assert merge.detector.merger.emitted_through == T0 + BUCKET
    result = merge.detector.handle(a.close(), merge.now, RULES, ["a"])
    assert not result.dropped
    assert merge.detector.rulewindows is not None
    assert T0 in merge.detector.rulewindows.history.buckets
