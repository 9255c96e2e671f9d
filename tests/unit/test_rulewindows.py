"""Threshold rules on their own sliding windows of buckets, and their latches.

:class:`~monitor.analysis.rulewindows.RuleWindows` alone (buckets handed in
as the merge completes them, lower bounds of open buckets for early firing),
then through the count and detect stages for the early-firing property: a
monotone rule fired on a lower bound never names a window whose final value
is below its threshold.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.rulewindows import (
    MONOTONE_KINDS,
    Latch,
    RuleWindows,
    rule_value,
    rule_window_seconds,
)
from monitor.analysis.tickets.model import (
    NEGATIVE_SHARE,
    NEGATIVE_VOLUME,
    REPEAT_COMPLAINTS,
    AlertRule,
    RuleKind,
    Trigger,
)
from monitor.analysis.windows import PostFacts, TopicCounts, WindowAggregate
from monitor.records import PartitionReport
from monitor.stages.chain import partition_of
from monitor.stages.count import CountSettings, WindowCounter
from monitor.stages.detect import WindowDetector
from tests.support import (
    apply_state_writes,
    assert_each_signal_resolved,
    restore_rule_windows,
)

T0 = 1_709_510_400  # 2024-03-04 00:00 UTC: a whole hour
BUCKET = 60
MINUTE = 60
HOUR = 3600


def _rule(
    kind: str, threshold: float, window: int = 300, name: str = "", **extra: Any
) -> AlertRule:
    return AlertRule(
        name=name or f"{kind}-{window}",
        topic="a",
        kind=RuleKind(kind),
        threshold=threshold,
        window_seconds=window,
        **extra,
    )


def _posts(
    minute: int,
    negative: int,
    positive: int = 0,
    *,
    author: str | None = None,
    topic: str = "a",
    prefix: str = "p",
) -> list[PostFacts]:
    """Posts in minute ``minute`` after ``T0``: ``negative`` negative first."""
    return [
        PostFacts(
            post_id=f"{prefix}{minute}-{topic}-{n}",
            published=T0 + minute * MINUTE + n % MINUTE,
            negative=n < negative,
            topics=(topic,),
            keywords=("漏水",) if n < negative else ("商场",),
            author=author,
        )
        for n in range(negative + positive)
    ]


def _bucketed(posts: Iterable[PostFacts]) -> dict[int, WindowAggregate]:
    buckets: dict[int, WindowAggregate] = {}
    for post in posts:
        start = int(post.published // BUCKET) * BUCKET
        buckets.setdefault(start, WindowAggregate(start, BUCKET)).add(post)
    return buckets


def _minute(trigger: Trigger) -> int:
    """Its window end, in minutes after ``T0``."""
    return (int(trigger.window_end.timestamp()) - T0) // MINUTE


@dataclass
class Run:
    """RuleWindows as the detect stage drives it, bucket by bucket.

    ``complete(m)`` completes every bucket before minute ``m`` (from the
    posts given so far); ``early(m, open)`` evaluates the window ending at
    minute ``m`` on complete buckets plus the lower bounds ``open`` (bucket
    minute -> posts counted so far) of the open ones.
    """

    rules: list[AlertRule]
    rulewindows: RuleWindows = field(default_factory=lambda: RuleWindows(BUCKET, 0))
    posts: list[PostFacts] = field(default_factory=list)
    through: int = 0  # minutes completed
    fired: list[Trigger] = field(default_factory=list)

    def add(self, posts: Iterable[PostFacts]) -> Run:
        self.posts += posts
        return self

    def complete(self, minute: int) -> list[Trigger]:
        buckets = _bucketed(self.posts)
        out = []
        for m in range(self.through, minute):
            start = T0 + m * MINUTE
            self.rulewindows.history.put(
                buckets.get(start) or WindowAggregate(start, BUCKET)
            )
            out += self.rulewindows.completed(
                start + BUCKET, self.rules, self.rulewindows.history.topic
            )
            self.rulewindows.prune(start + BUCKET, self.rules)
        self.through = max(self.through, minute)
        self.fired += out
        return out

    def early(
        self, minute: int, open_posts: Mapping[int, Sequence[PostFacts]]
    ) -> list[Trigger]:
        lower = {
            T0 + m * MINUTE: _bucketed(posts)[T0 + m * MINUTE]
            for m, posts in open_posts.items()
            if posts
        }
        history = self.rulewindows.history

        def counts(start: int, topic: str) -> list[TopicCounts]:
            if start < T0 + self.through * MINUTE:
                return history.topic(start, topic)
            bucket = lower.get(start)
            counts = None if bucket is None else bucket.topics.get(topic)
            return [] if counts is None else [counts]

        out = self.rulewindows.early(T0 + minute * MINUTE, self.rules, counts)
        self.fired += out
        return out


# --- bucket sums for several rule windows ---------------------------------------


def test_5m_15m_and_1h_rules_coexist_on_one_topic() -> None:
    # One negative post a minute for two hours: 5 per 5 minutes, 15 per 15
    # minutes, 60 per hour. Each rule sums its own window of buckets: only
    # the 1-hour rule reaches its threshold, and only on the hour's sum.
    rules = [
        _rule(NEGATIVE_VOLUME, 6, 300),
        _rule(NEGATIVE_VOLUME, 16, 900),
        _rule(NEGATIVE_VOLUME, 60, HOUR),
    ]
    run = Run(rules).add(p for m in range(120) for p in _posts(m, 1))
    fired = run.complete(59)
    assert fired == []  # 59 minutes: 59 posts
    (trigger,) = run.complete(60)
    assert trigger.rule == f"{NEGATIVE_VOLUME}-{HOUR}"
    assert trigger.observed_value == 60
    assert int(trigger.window_start.timestamp()) == T0
    assert int(trigger.window_end.timestamp()) == T0 + HOUR
    # still 60 every minute after: latched until a period has passed
    assert [(t.rule, _minute(t)) for t in run.complete(120)] == [(trigger.rule, 120)]


def test_shorter_rules_fire_on_their_window_the_longer_one_does_not() -> None:
    # A spike of 10 in one minute over a calm hour: the 5-minute and
    # 15-minute rules see it, the 1-hour one needs the hour's 60.
    rules = [
        _rule(NEGATIVE_VOLUME, 8, 300),
        _rule(NEGATIVE_VOLUME, 12, 900),
        _rule(NEGATIVE_VOLUME, 60, HOUR),
    ]
    run = Run(rules).add(p for m in range(0, 60, 10) for p in _posts(m, 1))
    run.add(_posts(30, 9, prefix="spike"))  # minute 30: 10 negative
    run.add(_posts(35, 3, prefix="more"))  # minute 35: 3 more
    fired = [(t.rule, _minute(t), t.observed_value) for t in run.complete(90)]
    assert fired == [
        (f"{NEGATIVE_VOLUME}-300", 31, 10),
        # minutes 21..35: 10 + 3 = 13, first at the end of minute 35
        (f"{NEGATIVE_VOLUME}-900", 36, 13),
    ]


def test_a_rule_slides_by_one_bucket() -> None:
    # 3 negative posts in minute 3 and 3 in minute 6: no tumbling 5-minute
    # window ([0, 5), [5, 10)) holds 6, the sliding window [2, 7) does.
    run = Run([_rule(NEGATIVE_VOLUME, 6, 300)])
    run.add(_posts(3, 3)).add(_posts(6, 3, prefix="q"))
    (trigger,) = run.complete(30)
    assert _minute(trigger) == 7
    assert int(trigger.window_start.timestamp()) == T0 + 2 * MINUTE
    assert trigger.signal_id == f"{NEGATIVE_VOLUME}-300@a@{T0 + 7 * MINUTE}"


def test_a_window_that_is_not_a_whole_number_of_buckets_is_rounded_up() -> None:
    # within 90 s: two buckets (the 90 s window is the first that holds it)
    rule = _rule(REPEAT_COMPLAINTS, 2, 60, within_seconds=90)
    assert rule_window_seconds(rule) == 90
    run = (
        Run([rule])
        .add(_posts(0, 1, author="u"))
        .add(_posts(1, 1, author="u", prefix="x"))
    )
    (trigger,) = run.complete(5)
    assert _minute(trigger) == 2
    assert (trigger.window_end - trigger.window_start).total_seconds() == 120


_bucket_counts = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 3), st.sampled_from("uvw")),
    min_size=1,
    max_size=90,
)


@settings(max_examples=60, deadline=None)
@given(_bucket_counts, st.integers(0, 89))
def test_rule_values_are_the_sums_of_their_buckets(
    minutes: list[tuple[int, int, str]], at: int
) -> None:
    """Every rule's value at any end is the sum over its own buckets."""
    posts = [
        p
        for m, (negative, positive, author) in enumerate(minutes)
        for p in _posts(m, negative, positive, author=author)
    ]
    buckets = _bucketed(posts)

    def counts(start: int, topic: str) -> list[TopicCounts]:
        bucket = buckets.get(start)
        found = None if bucket is None else bucket.topics.get(topic)
        return [] if found is None else [found]

    end = T0 + (at + 1) * MINUTE
    for length in (300, 900, HOUR):
        inside = [
            minutes[m]
            for m in range(len(minutes))
            if end - length <= T0 + m * MINUTE < end
        ]
        negative = sum(n for n, _, _ in inside)
        total = sum(n + p for n, p, _ in inside)
        volume = rule_value(_rule(NEGATIVE_VOLUME, 1, length), end, BUCKET, counts)
        assert volume.value == negative
        assert volume.crossed is (negative >= 1)
        share = rule_value(_rule(NEGATIVE_SHARE, 0.5, length), end, BUCKET, counts)
        assert share.value == pytest.approx(negative / total if total else 0.0)
        assert share.crossed is bool(total and negative / total >= 0.5)
        repeat = rule_value(
            _rule(REPEAT_COMPLAINTS, 3, 60, within_seconds=length),
            end,
            BUCKET,
            counts,
        )
        per_author: dict[str, int] = {}
        for n, _, author in inside:
            per_author[author] = per_author.get(author, 0) + n
        assert repeat.value == max(per_author.values(), default=0)


# --- latches ---------------------------------------------------------------------


def test_no_second_firing_at_the_close_after_an_early_one() -> None:
    rule = _rule(NEGATIVE_VOLUME, 3, 300)
    run = Run([rule]).add(_posts(0, 2))
    run.complete(1)  # minute 0 complete: 2
    # minute 1 open: 1 post counted so far -> the window ending at 2 holds 3
    (early,) = run.early(2, {1: _posts(1, 1, prefix="q")})
    assert early.signal_id == f"{rule.name}@a@{T0 + 2 * MINUTE}"
    assert early.observed_value == 3 and not early.provisional
    # the same lower bound again (a retried batch): nothing
    assert run.early(2, {1: _posts(1, 1, prefix="q")}) == []
    # minute 1 closes with 4: the window at 2 holds 6, no second firing
    run.add(_posts(1, 4, prefix="q"))
    assert run.complete(2) == []
    # the later windows that still hold the posts: latched
    assert run.complete(6) == []
    assert [t.signal_id for t in run.fired] == [early.signal_id]


def test_an_early_firing_on_a_later_bucket_covers_the_earlier_close() -> None:
    # Minutes 1 and 2 open; the lower bound of the window ending at 3 fires.
    # Minute 1 then closes below the threshold (its window ends at 2): that
    # is not a complete window after the firing, so the latch stays shut.
    rule = _rule(NEGATIVE_VOLUME, 3, 300)
    run = Run([rule]).add(_posts(0, 1))
    run.complete(1)
    (early,) = run.early(3, {1: _posts(1, 1, prefix="a"), 2: _posts(2, 1, prefix="b")})
    assert _minute(early) == 3
    run.add(_posts(1, 1, prefix="a")).add(_posts(2, 1, prefix="b"))
    assert run.complete(2) == []  # window at 2: 2 < 3, not a re-arm
    assert run.complete(3) == []  # window at 3: 3, fired early already
    assert run.rulewindows.latches[f"{rule.name}@a"].armed is False


def test_the_rule_fires_again_once_per_period_while_above() -> None:
    # Five negative posts every minute for three hours: the 5-minute rule is
    # above from its first window on; it fires again every 5 minutes, the
    # hour rule every hour, each signal a window of its own.
    rules = [_rule(NEGATIVE_VOLUME, 5, 300), _rule(NEGATIVE_VOLUME, 300, HOUR)]
    run = Run(rules).add(p for m in range(180) for p in _posts(m, 5))
    run.complete(180)
    by_rule: dict[str, list[int]] = {}
    for trigger in run.fired:
        by_rule.setdefault(trigger.rule, []).append(_minute(trigger))
    assert by_rule[rules[0].name] == list(range(1, 181, 5))
    assert by_rule[rules[1].name] == [60, 120, 180]
    assert len({t.signal_id for t in run.fired}) == len(run.fired)


@pytest.mark.parametrize("first", [1, 4, 5, 59, 60])
def test_firings_while_above_are_a_whole_period_apart(first: int) -> None:
    # However the first firing falls against the clock, a rule that stays
    # above fires again one rule window later, not at the next round hour.
    rule = _rule(NEGATIVE_VOLUME, 1, HOUR)
    run = Run([rule]).add(p for m in range(first - 1, 200) for p in _posts(m, 1))
    run.complete(200)
    ends = [_minute(t) for t in run.fired]
    assert ends == list(range(first, 201, 60))


def _fired_at_4() -> Run:
    """A 5-minute rule of 3 that fires at minute 4: 1 post at 0, 2 at 3."""
    run = Run([_rule(NEGATIVE_VOLUME, 3, 300)]).add(_posts(0, 1))
    run.add(_posts(3, 2, prefix="x"))
    (first,) = run.complete(4)
    assert _minute(first) == 4
    return run


def test_a_lower_bound_below_the_threshold_does_not_rearm() -> None:
    run = _fired_at_4()
    latch = run.rulewindows.latches[f"{NEGATIVE_VOLUME}-300@a"]
    # minute 5 complete: [0, 5) still 3. The early view of the window
    # ending at 6 ([1, 6), minute 5 open) is 2: only a lower bound
    run.complete(5)
    assert run.early(6, {5: []}) == []
    assert latch.armed is False
    # a lower bound that crosses again before any complete window fell
    # below is the same incident: nothing
    assert run.early(6, {5: _posts(5, 1, prefix="y")}) == []
    run.add(_posts(5, 1, prefix="y"))
    assert run.complete(8) == []  # [1, 6), [2, 7), [3, 8): 3 each
    assert [_minute(t) for t in run.fired] == [4]


def test_a_complete_window_below_the_threshold_rearms() -> None:
    run = _fired_at_4()
    # minute 5 closes empty: the window [1, 6) holds 2 -> armed again
    assert run.complete(6) == []
    assert run.rulewindows.latches[f"{NEGATIVE_VOLUME}-300@a"].armed is True
    # the next crossing fires at once, 3 minutes after the first firing
    run.add(_posts(6, 1, prefix="y"))
    (again,) = run.complete(7)
    assert _minute(again) == 7 and again.observed_value == 3


def test_latch_gate_verdicts() -> None:
    latch = Latch()
    assert latch.gate(600, crossed=False, final=True, period=300) is None
    assert latch.gate(600, crossed=True, final=False, period=300) == "fire"
    assert latch.gate(600, crossed=True, final=True, period=300) is None
    assert latch.gate(540, crossed=False, final=True, period=300) is None
    assert latch.armed is False  # an older window below changes nothing
    assert latch.gate(660, crossed=True, final=True, period=300) is None
    assert latch.gate(900, crossed=True, final=True, period=300) == "fire"
    assert latch.gate(960, crossed=False, final=False, period=300) is None
    assert latch.armed is False
    assert latch.gate(960, crossed=False, final=True, period=300) is None
    assert latch.armed is True
    assert latch.gate(1020, crossed=True, final=True, period=300) == "fire"
    assert Latch.from_dict(json.loads(json.dumps(latch.to_dict()))) == latch


# --- provisional share signals ------------------------------------------------


def _share() -> AlertRule:
    return _rule(NEGATIVE_SHARE, 0.5, 300, min_volume=4)


def test_an_early_share_signal_is_provisional_and_confirmed_at_the_close() -> None:
    rule = _share()
    run = Run([rule])
    (early,) = run.early(1, {0: _posts(0, 3, 1)})
    assert early.provisional and not early.retracted
    assert early.observed_value == pytest.approx(0.75)
    # the lagging partitions bring 2 more positive posts: 3 of 6, still >= 0.5
    run.add(_posts(0, 3, 3))
    (close,) = run.complete(1)
    assert close.signal_id == early.signal_id
    assert (close.provisional, close.retracted) == (False, False)
    assert close.observed_value == pytest.approx(0.5)
    assert run.complete(10) == []  # confirmed once; latched while above


def test_an_early_share_signal_is_retracted_when_its_window_closes_below() -> None:
    rule = _share()
    run = Run([rule])
    (early,) = run.early(1, {0: _posts(0, 3, 1)})
    run.add(_posts(0, 3, 7))  # 3 of 10
    (close,) = run.complete(1)
    assert close.signal_id == early.signal_id
    assert close.retracted and not close.provisional
    assert close.observed_value == pytest.approx(0.3)
    # withdrawn: the latch is armed again, the next crossing fires at once
    run.add(_posts(1, 10, prefix="x"))
    (again,) = run.complete(2)
    assert _minute(again) == 2 and not again.provisional and not again.retracted


def test_monotone_rules_are_never_provisional() -> None:
    rules = [
        _rule(NEGATIVE_VOLUME, 3, 300),
        _rule(REPEAT_COMPLAINTS, 3, 300, within_seconds=300),
    ]
    fired = Run(rules).early(1, {0: _posts(0, 3, author="u")})
    assert {t.kind for t in fired} == {NEGATIVE_VOLUME, REPEAT_COMPLAINTS}
    assert not any(t.provisional or t.retracted for t in fired)


def test_every_provisional_signal_is_resolved_once() -> None:
    # A lagging partition keeps minutes 4..9 open while the others report
    # them: the share crosses early on the window ending at 5 and, a whole
    # period later, on the one ending at 10. Each provisional signal must be
    # confirmed or withdrawn when its window closes; none is left hanging.
    rule = _share()
    run = Run([rule])
    open_posts = {m: _posts(m, 4) for m in range(4, 10)}
    for end in range(5, 11):
        run.early(end, open_posts)
    assert run.fired and all(t.provisional for t in run.fired)
    for m in range(4, 10):  # all close far below the share
        run.add(_posts(m, 4, 20))
    run.complete(12)
    assert_each_signal_resolved(run.fired)


@st.composite
def _share_plans(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    """Per minute: negative posts seen early, then negative and positive later."""
    return draw(
        st.lists(
            st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(0, 6)),
            min_size=2,
            max_size=25,
        )
    )


@settings(max_examples=80, deadline=None)
@given(_share_plans(), st.integers(1, 3), st.randoms(use_true_random=False))
def test_share_signals_are_resolved_whatever_the_partitions_report(
    plan: list[tuple[int, int, int]], lag: int, rng: random.Random
) -> None:
    """Open buckets seen early (up to ``lag`` of them), then completed."""
    rule = _share()
    run = Run([rule])
    final: dict[int, list[PostFacts]] = {}
    for m, (seen, negative, positive) in enumerate(plan):
        final[m] = _posts(m, seen + negative, positive)
        early = {
            k: [p for p in final[k] if p.negative][: plan[k][0]]
            for k in range(max(0, m - lag + 1), m + 1)
        }
        for k in sorted(early, key=lambda _: rng.random()):
            run.early(k + 1, early)
        run.add(final[m - lag + 1] if m - lag + 1 >= 0 else [])
        run.complete(max(0, m - lag + 2))
    for m in range(max(0, len(plan) - lag + 1), len(plan)):
        run.add(final[m])
    run.complete(len(plan) + 6)
    assert_each_signal_resolved(run.fired)
    for trigger in run.fired:
        if not trigger.provisional:
            assert trigger.observed_value >= rule.threshold or trigger.retracted


# --- early firing through the count and detect stages ------------------------------

COUNT = CountSettings(
    bucket_seconds=BUCKET,
    grace_seconds=120,
    idle_close_seconds=1,
    window_wait_seconds=30,
)
EARLY_RULES = [
    _rule(NEGATIVE_VOLUME, 4, 300, name="volume-5m"),
    _rule(NEGATIVE_VOLUME, 7, 900, name="volume-15m"),
    _rule(REPEAT_COMPLAINTS, 3, 300, within_seconds=600, name="repeat"),
    _rule(NEGATIVE_SHARE, 0.6, 300, min_volume=3, name="share"),
]


@st.composite
def _feeds(draw: st.DrawFn) -> tuple[list[PostFacts], int, list[int]]:
    """Posts of a quarter-hour, a little out of order; partitions; batch sizes."""
    count = draw(st.integers(1, 45))
    posts = []
    for n in range(count):
        second = draw(st.integers(0, 15 * 60 - 1))
        jitter = draw(st.integers(0, 150))  # arrival: up to 150 s out of order
        posts.append(
            (
                second + jitter,
                PostFacts(
                    post_id=f"p{n}",
                    published=T0 + second,
                    negative=draw(st.booleans()),
                    topics=("a",),
                    keywords=(),
                    author=draw(st.sampled_from(["u", "v", "w"])),
                ),
            )
        )
    posts.sort(key=lambda item: item[0])
    partitions = draw(st.integers(1, 3))
    batches = draw(st.lists(st.integers(1, 6), min_size=1, max_size=8))
    return [post for _, post in posts], partitions, batches


def _stream(
    posts: Sequence[PostFacts], partitions: int, batches: Sequence[int], seed: int
) -> tuple[WindowDetector, list[tuple[Trigger, bool]]]:
    """Count and detect, partitions taking turns; triggers with 'early' flags."""
    rng = random.Random(seed)
    counter = WindowCounter(COUNT)
    detector = WindowDetector(
        partitions=partitions,
        bucket_seconds=BUCKET,
        window_seconds=300,
        window_wait_seconds=float("inf"),
    )
    detector.restore([], 0.0)
    queues: dict[int, list[tuple[int, PostFacts]]] = {}
    for post in posts:
        queue = queues.setdefault(partition_of(post.post_id, partitions), [])
        queue.append((len(queue), post))
    for partition in range(partitions):
        counter.restore(partition, [], 0.0)
    fired: list[tuple[Trigger, bool]] = []

    def handle(reports: list[PartitionReport]) -> None:
        result = detector.handle(reports, 0.0, EARLY_RULES, ["a"])
        assert detector.merger is not None
        through = detector.merger.emitted_through
        for trigger in result.all_triggers:
            end = int(trigger.window_end.timestamp())
            fired.append((trigger, through is None or end - BUCKET > through))

    step = 0
    while any(queues.values()):
        partition = rng.choice([p for p, q in queues.items() if q])
        size = batches[step % len(batches)]
        step += 1
        batch, queues[partition] = queues[partition][:size], queues[partition][size:]
        result = counter.count(partition, batch, 0.0, caught_up=True)
        handle(result.reports)
    for partition in range(partitions):
        closed = counter.idle_close(partition, float("inf"), caught_up=True)
        if closed is not None:
            handle(closed.reports)
    handle([PartitionReport.heartbeat(p, False) for p in range(partitions)])
    return detector, fired


@settings(max_examples=60, deadline=None)
@given(_feeds(), st.integers(0, 2**16))
def test_a_window_fired_early_always_closes_at_or_above_the_threshold(
    feed: tuple[list[PostFacts], int, list[int]], seed: int
) -> None:
    posts, partitions, batches = feed
    detector, fired = _stream(posts, partitions, batches, seed)
    rulewindows = detector.rulewindows
    assert rulewindows is not None and detector.merger is not None
    assert not detector.merger.pending  # every bucket closed
    rules = {rule.name: rule for rule in EARLY_RULES}
    for trigger, early in fired:
        rule = rules[trigger.rule]
        if early and rule.kind in MONOTONE_KINDS:
            final = rule_value(
                rule,
                int(trigger.window_end.timestamp()),
                BUCKET,
                rulewindows.history.topic,
            )
            assert final.value >= rule.threshold, (trigger, final.value)
            assert final.value >= trigger.observed_value
    assert_each_signal_resolved([trigger for trigger, _ in fired])


def test_the_stream_fires_monotone_rules_early() -> None:
    # The property above is not vacuous: a burst of complaints in one open
    # bucket fires the volume and repeat rules before the bucket closes.
    posts = [
        PostFacts(
            post_id=f"p{n}",
            published=T0 + 10 * n,
            negative=True,
            topics=("a",),
            keywords=(),
            author="u",
        )
        for n in range(5)
    ]
    _, fired = _stream(posts, 2, [1], 0)
    early = {t.rule for t, is_early in fired if is_early}
    assert {"volume-5m", "repeat", "share"} <= early
    assert all(t.provisional for t, is_early in fired if t.rule == "share" and is_early)
    assert_each_signal_resolved([t for t, _ in fired])


# --- state round trip -----------------------------------------------------------


ROUND_TRIP_RULES = [
    _rule(NEGATIVE_VOLUME, 4, 300),
    _rule(NEGATIVE_VOLUME, 12, 900),
    _rule(NEGATIVE_SHARE, 0.6, 300, min_volume=3),
    _rule(REPEAT_COMPLAINTS, 3, 300, within_seconds=600),
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4),
            st.integers(0, 3),
            st.sampled_from("uv"),
            st.sampled_from(["漏水", "商场", "停车"]),
            st.booleans(),
        ),
        min_size=2,
        max_size=40,
    ),
    st.data(),
)
def test_writes_then_restore_continue_identically(
    minutes: list[tuple[int, int, str, str, bool]], data: st.DataObject
) -> None:
    """Restored from its writes at any minute, a copy fires as the original."""
    split = data.draw(st.integers(0, len(minutes)))
    posts: dict[int, list[PostFacts]] = {}
    for m, (negative, positive, author, word, _) in enumerate(minutes):
        posts[m] = [
            PostFacts(
                post_id=f"p{m}-{n}",
                published=T0 + m * MINUTE + n,
                negative=n < negative,
                topics=("a",),
                # counts that do not follow the order words first came in
                keywords=(word,) if n == 0 else ("商场",) if n % 2 else ("停车",),
                author=author,
            )
            for n in range(negative + positive)
        ]

    def step(run: Run, m: int) -> list[Trigger]:
        out = []
        if minutes[m][4]:  # an early look at minute m's first posts
            out += run.early(m + 1, {m: posts[m][: len(posts[m]) // 2 + 1]})
        run.add(posts[m])
        out += run.complete(m + 1)
        return out

    original, log = Run(ROUND_TRIP_RULES), dict[str, Any]()
    for m in range(split):
        step(original, m)
    apply_state_writes(log, original.rulewindows.writes())
    copy = Run(
        ROUND_TRIP_RULES, rulewindows=restore_rule_windows(log, BUCKET), through=split
    )
    copy.posts = list(original.posts)
    assert copy.rulewindows.latches == original.rulewindows.latches
    for m in range(split, len(minutes)):
        assert step(copy, m) == step(original, m)
        writes = original.rulewindows.writes()
        assert copy.rulewindows.writes() == writes
        apply_state_writes(log, writes)
    assert restore_rule_windows(log, BUCKET).latches == original.rulewindows.latches


def test_a_restored_copy_names_the_same_keywords_in_the_same_order() -> None:
    # Minute 0: 漏水 once, then 停车 twice; minute 1: 漏水 once more. The
    # window's keywords tie (2 each): the trigger must list them the same
    # way whether minute 0 came from memory or from the state log (where a
    # bucket's keywords are stored most frequent first).
    rule = _rule(NEGATIVE_VOLUME, 4, 300)
    words = [("漏水",), ("停车",), ("停车",)]
    minute0 = [
        PostFacts(f"a{n}", T0 + n, True, ("a",), kw) for n, kw in enumerate(words)
    ]
    minute1 = [PostFacts("b0", T0 + 60, True, ("a",), ("漏水",))]
    original, log = Run([rule]).add(minute0), dict[str, Any]()
    original.complete(1)
    apply_state_writes(log, original.rulewindows.writes())
    copy = Run([rule], rulewindows=restore_rule_windows(log, BUCKET), through=1).add(
        minute0
    )
    ours = original.add(minute1).complete(2)
    theirs = copy.add(minute1).complete(2)
    assert [t.keywords for t in theirs] == [t.keywords for t in ours]
    assert theirs == ours
