"""Complete windows to series points, burst updates and rule triggers.

Bursts and emerging keywords run on the detector window (WindowEvaluator);
threshold rules on their own windows of buckets (RuleWindows; its sliding
sums and latches in detail: tests/unit/test_rulewindows.py).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.detection import (
    BurstUpdate,
    WindowEvaluator,
    WindowReport,
    amended_points,
    point_verdicts,
)
from monitor.analysis.rulewindows import THRESHOLD_KINDS, RuleWindows
from monitor.analysis.tickets.codec import trigger_from_dict, trigger_to_dict
from monitor.analysis.tickets.model import (
    BURST,
    EMERGING_KEYWORD,
    NEGATIVE_SHARE,
    NEGATIVE_VOLUME,
    REPEAT_COMPLAINTS,
    RULE_KINDS,
    AlertRule,
    Evidence,
    RuleKind,
    Trigger,
)
from monitor.analysis.windows import PostFacts, WindowAggregate, window_start
from tests.support import apply_state_writes, restore_rule_windows

T0 = 1_709_510_400  # 2024-03-04 00:00 UTC, a Monday
SIZE = 300
#: Posts per window of a calm topic: the baseline of the burst detectors.
CALM = [2, 3, 2, 1, 2, 3, 2, 2] * 5


def _at(index: int) -> int:
    return T0 + index * SIZE


def _posts(
    index: int,
    count: int,
    *,
    negative: int = 0,
    topic: str = "a",
    keywords: Sequence[str] = (),
    author: str | None = None,
    prefix: str = "p",
    followers: int = 0,
    tier: str | None = None,
) -> list[PostFacts]:
    """``count`` posts in window ``index``, the first ``negative`` negative."""
    return [
        PostFacts(
            post_id=f"{prefix}{index}-{topic}-{n}",
            published=_at(index) + n % SIZE,
            negative=n < negative,
            topics=(topic,),
            keywords=tuple(keywords),
            author=author,
            followers=followers,
            excerpt=f"post {n}",
            customer_tier=tier,
        )
        for n in range(count)
    ]


def _window(index: int, *groups: list[PostFacts]) -> WindowAggregate:
    window = WindowAggregate(_at(index), SIZE)
    for group in groups:
        for post in group:
            window.add(post)
    return window


def _rule(kind: str, threshold: float, **extra: Any) -> AlertRule:
    return AlertRule(
        name=f"{kind}-rule",
        topic="a",
        kind=RuleKind(kind),
        threshold=threshold,
        **extra,
    )


def _calm(evaluator: WindowEvaluator, rules: Sequence[AlertRule] = ()) -> int:
    """Feed the calm baseline; return the index of the next window."""
    for index, count in enumerate(CALM):
        evaluator.evaluate(_window(index, _posts(index, count)), rules, ["a"])
    return len(CALM)


# --- threshold rules: their own window of buckets ------------------------------
#
# negative_volume, negative_share and repeat_complaints no longer run on the
# detector window (WindowEvaluator): RuleWindows sums each rule's own window
# of 1-minute buckets, sliding by one bucket, and passes the value through
# the rule's latch. These are the per-window tests of the evaluator, ported:
# the same thresholds, floors, topics and tiers. Where the semantics changed
# the test says so.

BUCKET = 60


def _buckets(posts: Sequence[PostFacts]) -> dict[int, WindowAggregate]:
    """The posts in 1-minute buckets, by start."""
    buckets: dict[int, WindowAggregate] = {}
    for post in posts:
        start = window_start(post.published, BUCKET)
        bucket = buckets.get(start)
        if bucket is None:
            bucket = buckets[start] = WindowAggregate(start, BUCKET)
        bucket.add(post)
    return buckets


def _complete(
    rulewindows: RuleWindows,
    rules: Sequence[AlertRule],
    buckets: dict[int, WindowAggregate],
    first: int,
    last: int,
) -> dict[int, list[Trigger]]:
    """Complete the buckets ``[first, last)`` in order, as the merge does.

    Returns the triggers by window end, in seconds after ``T0``.
    """
    fired: dict[int, list[Trigger]] = {}
    for start in range(first, last, BUCKET):
        rulewindows.history.put(buckets.get(start) or WindowAggregate(start, BUCKET))
        end = start + BUCKET
        triggers = rulewindows.completed(end, rules, rulewindows.history.topic)
        rulewindows.prune(end, rules)
        if triggers:
            fired[end - T0] = triggers
    return fired


def _fire(
    rules: Sequence[AlertRule], posts: Sequence[PostFacts], minutes: int = 60
) -> dict[int, list[Trigger]]:
    """Complete ``minutes`` of buckets from ``T0``; the triggers by window end."""
    return _complete(
        RuleWindows(BUCKET, 0), rules, _buckets(posts), T0, T0 + minutes * BUCKET
    )


@pytest.mark.parametrize(("negative", "fires"), [(2, False), (3, True), (4, True)])
def test_negative_volume_fires_at_its_threshold(negative: int, fires: bool) -> None:
    rule = _rule(NEGATIVE_VOLUME, 3)
    fired = _fire([rule], _posts(0, 5, negative=negative, followers=50, tier="gold"))
    # The posts are in the first minute: the first 5-minute window of buckets
    # that holds them ends with that minute, and the latch keeps the four
    # later windows that still hold them from firing again.
    assert list(fired) == ([BUCKET] if fires else [])
    if fires:
        (trigger,) = fired[BUCKET]
        assert (trigger.topic, trigger.rule, trigger.kind) == (
            "a",
            rule.name,
            rule.kind,
        )
        assert trigger.keyword is None
        assert trigger.observed_value == negative
        assert trigger.threshold == 3
        assert trigger.window_end == datetime.fromtimestamp(
            T0 + BUCKET, tz=timezone.utc
        )
        assert trigger.window_end - trigger.window_start == timedelta(seconds=SIZE)
        assert trigger.signal_id == f"{rule.name}@a@{T0 + BUCKET}"
        assert trigger.author_followers == 50
        assert trigger.customer_tier == "gold"
        assert {item.post_id for item in trigger.evidence} == {
            f"p0-a-{n}" for n in range(negative)
        }
        assert not trigger.provisional and not trigger.retracted


@pytest.mark.parametrize(
    ("posts", "negative", "min_volume", "threshold", "fires"),
    [
        (10, 8, 10, 0.8, True),  # exactly the share, exactly the volume
        (10, 7, 10, 0.8, False),  # share below
        (9, 9, 10, 0.8, False),  # 100 % but below the volume floor
        (20, 16, 10, 0.8, True),
        (3, 2, 0, 2 / 3, True),  # no floor: any window with a post
        (3, 1, 0, 0.5, False),
        (0, 0, 0, 0.1, False),  # no posts: no share at all
    ],
)
def test_negative_share_needs_its_share_and_min_volume(
    posts: int, negative: int, min_volume: int, threshold: float, fires: bool
) -> None:
    rule = _rule(NEGATIVE_SHARE, threshold, min_volume=min_volume)
    fired = _fire([rule], _posts(0, posts, negative=negative))
    assert list(fired) == ([BUCKET] if fires else [])
    if fires:
        (trigger,) = fired[BUCKET]
        assert trigger.observed_value == pytest.approx(negative / posts)
        assert not trigger.provisional  # complete windows are never provisional


def test_negative_share_sums_its_window_of_buckets() -> None:
    # Nine negative posts in minute 0 are below the floor of ten; the tenth,
    # in minute 3, is in the same 5-minute window: it fires then. A post in
    # minute 6 is not (minute 0 has left the window).
    rule = _rule(NEGATIVE_SHARE, 0.8, min_volume=10)
    early = _posts(0, 9, negative=9)
    assert _fire([rule], early) == {}
    late = [replace(_posts(0, 1, negative=1, prefix="x")[0], published=T0 + 180)]
    (end,) = _fire([rule], early + late)
    assert end == 4 * BUCKET
    later = [replace(late[0], published=T0 + 360)]
    assert _fire([rule], early + later) == {}


def test_rules_only_look_at_their_own_topic() -> None:
    rules = [_rule(kind, 1) for kind in (NEGATIVE_VOLUME, REPEAT_COMPLAINTS)]
    rules.append(_rule(NEGATIVE_SHARE, 0.1))
    assert _fire(rules, _posts(0, 5, negative=5, topic="b", author="u")) == {}


def test_customer_tier_is_the_highest_one_in_the_window() -> None:
    rule = _rule(NEGATIVE_VOLUME, 3)
    posts = [
        *_posts(0, 1, negative=1, tier="gold", prefix="g"),
        *_posts(0, 1, negative=1, tier="vip", prefix="v"),
        *_posts(0, 1, negative=1, tier="bronze", prefix="b"),
    ]
    # the vip post two minutes after the others: the third of the window
    posts[1] = replace(posts[1], published=T0 + 120)
    ((trigger,),) = _fire([rule], posts).values()
    assert trigger.customer_tier == "vip"
    assert trigger.crossing_post_id == "v0-a-0"


# --- repeat complaints -------------------------------------------------------------


def _complaint(index: int, author: str, negative: bool = True) -> list[PostFacts]:
    return _posts(index, 1, negative=int(negative), author=author, prefix=f"{author}-")


def _plan(plan: dict[int, list[list[PostFacts]]]) -> list[PostFacts]:
    return [post for groups in plan.values() for group in groups for post in group]


def test_repeat_complaints_count_one_authors_negative_posts_across_windows() -> None:
    rule = _rule(REPEAT_COMPLAINTS, 3, within_seconds=1800)
    plan = {
        0: [_complaint(0, "u")],
        1: [_complaint(1, "u", negative=False), _complaint(1, "v")],
        2: [_complaint(2, "u"), _complaint(2, "v")],
        4: [_complaint(4, "u")],
    }
    fired = _fire([rule], _plan(plan))
    # u's third negative post (5-minute window 4, minute 20) crosses; the
    # 30-minute window stays above until minute 0 leaves it, then re-arms.
    assert list(fired) == [_at(4) + BUCKET - T0]
    (trigger,) = fired[_at(4) + BUCKET - T0]
    assert trigger.observed_value == trigger.repeat_complaints == 3
    assert trigger.window_end - trigger.window_start == timedelta(seconds=1800)
    # The window is the rule's (30 minutes), no longer the 5-minute window;
    # the evidence is the repeater's complaints (not v's, not u's positive
    # post), the post that crossed is u's third complaint.
    assert trigger.crossing_post_id == "u-4-a-0"
    assert {e.post_id for e in trigger.evidence} == {"u-0-a-0", "u-2-a-0", "u-4-a-0"}


def test_repeat_complaints_stay_latched_while_above() -> None:
    # New semantics: the evaluator fired again whenever the author complained
    # again in a window. Now one latch per rule and topic: a complaint that
    # only raises the value does not fire again; while above, the rule fires
    # again only a whole rule window (30 minutes here) after its last firing,
    # and it re-arms when a complete window falls below.
    rule = _rule(REPEAT_COMPLAINTS, 2, within_seconds=1800)
    plan = {
        0: [_complaint(0, "u")],
        1: [_complaint(1, "u")],  # u: 2 -> fires at minute 6
        2: [_complaint(2, "v")],  # v: 1
        3: [_complaint(3, "u")],  # u: 3, latched: nothing
        9: [_complaint(9, "u")],  # minute 45; below since minute 36: re-armed
        10: [_complaint(10, "u")],  # minute 50: u at 2 again, fires
    }
    fired = _fire([rule], _plan(plan), minutes=120)
    ends = {end // BUCKET: [t.observed_value for t in ts] for end, ts in fired.items()}
    # (u is at 2 or more from minute 6 to minute 35: never 30 minutes after
    # the first firing, so no repeat while above)
    assert ends == {6: [2.0], 51: [2.0]}


@pytest.mark.parametrize(("within", "fires"), [(1800, False), (2100, True)])
def test_repeat_complaints_look_back_within_seconds(within: int, fires: bool) -> None:
    # complaints at minutes 0 and 30; the window ending with minute 30 starts
    # at minute 1 when 30 minutes long, at minute -4 when 35 minutes long
    rule = _rule(REPEAT_COMPLAINTS, 2, within_seconds=within)
    plan = {0: [_complaint(0, "u")], 6: [_complaint(6, "u")]}
    assert bool(_fire([rule], _plan(plan))) is fires


@pytest.mark.parametrize(("threshold", "fires"), [(2, True), (3, False)])
def test_repeat_complaints_within_one_window(threshold: int, fires: bool) -> None:
    rule = _rule(REPEAT_COMPLAINTS, threshold, within_seconds=600)
    posts = [
        *_posts(0, 2, negative=2, author="u"),
        *_posts(0, 1, negative=1, author="v", prefix="x"),
    ]
    assert bool(_fire([rule], posts)) is fires


# --- bursts -----------------------------------------------------------------------


def _spike_score(spike: int) -> float:
    evaluator = WindowEvaluator(SIZE)
    index = _calm(evaluator)
    report = evaluator.evaluate(_window(index, _posts(index, spike)), [], ["a"])
    (point,) = [p for p in report.points if p.series == "topic:a"]
    assert point.observed == spike and point.anomalous
    return point.score


def test_burst_rule_fires_at_its_threshold_and_not_below() -> None:
    score = _spike_score(20)
    assert score > 2
    for threshold, fires in ((score, True), (math.nextafter(score, math.inf), False)):
        rule = _rule(BURST, threshold)
        evaluator = WindowEvaluator(SIZE)
        index = _calm(evaluator, [rule])
        report = evaluator.evaluate(_window(index, _posts(index, 20)), [rule], ["a"])
        assert bool(report.triggers) is fires
        if fires:
            (trigger,) = report.triggers
            assert trigger.observed_value == trigger.burst_score == score
            assert trigger.expected_value is not None and trigger.expected_value < 20


def test_burst_rule_ignores_the_calm_windows() -> None:
    rule = _rule(BURST, 2)
    evaluator = WindowEvaluator(SIZE)
    reports = [
        evaluator.evaluate(_window(i, _posts(i, count)), [rule], ["a"])
        for i, count in enumerate(CALM)
    ]
    assert [r.triggers for r in reports] == [[]] * len(CALM)


def test_burst_rule_needs_the_window_above_its_baseline() -> None:
    # Right after a spike the multi-window score stays high while the
    # counts have dropped to nothing: that is no burst.
    rule = _rule(BURST, 1.0)
    evaluator = WindowEvaluator(SIZE)
    quiet = []
    for i, count in enumerate([*CALM, 12, 30, 80, 0]):
        quiet.append(evaluator.evaluate(_window(i, _posts(i, count)), [rule], ["a"]))
    (point,) = [p for p in quiet[-1].points if p.series == "topic:a"]
    assert point.score >= 1.0 and point.observed < point.expected
    assert quiet[-1].triggers == []
    assert quiet[-2].triggers  # the spike itself did fire


def _burst_updates(spike: list[int]) -> list[BurstUpdate]:
    """Calm, a spike, then calm for 10 hours; half of every window negative."""
    evaluator = WindowEvaluator(SIZE)
    updates = []
    for i, count in enumerate([*CALM, *spike, *[2, 3, 1, 2] * 30]):
        window = _window(i, _posts(i, count, negative=count // 2))
        updates += evaluator.evaluate(window, [], ["a"]).bursts
    return updates


@pytest.mark.parametrize("spike", [[12, 30, 80], [10, 25, 60, 150]])
def test_burst_updates_carry_a_stable_burst_id(spike: list[int]) -> None:
    updates = _burst_updates(spike)
    started = {u.series: u for u in updates if u.phase == "started"}
    assert started
    for update in updates:
        first = started[update.series]  # every event is announced first
        assert update.started_at == first.window_start
        assert update.burst_id == f"{update.series}@{first.window_start}"
        assert update.window_seconds == SIZE
    assert len(updates) > len(started)  # the same event seen again


def test_burst_phases_cover_start_peak_and_end() -> None:
    updates = _burst_updates([12, 30, 80]) + _burst_updates([10, 25, 60, 150])
    phases = {(u.phase, u.ended_at is not None) for u in updates}
    assert phases == {("started", False), ("peaked", False), ("ended", True)}
    for update in updates:
        # evidence for a live event, none once it ended
        assert bool(update.post_ids) is (update.phase != "ended")


# --- emerging keywords ------------------------------------------------------------


def _emerging_run(threshold: float) -> WindowReport:
    rule = _rule(EMERGING_KEYWORD, threshold)
    evaluator = WindowEvaluator(SIZE)
    for i in range(12):
        evaluator.evaluate(
            _window(i, _posts(i, 5, keywords=("商场", "停车"))), [rule], ["a"]
        )
    window = _window(
        12,
        _posts(12, 12, negative=3, keywords=("漏水", "商场")),
        _posts(12, 5, prefix="q"),
    )
    return evaluator.evaluate(window, [rule], ["a"])


def test_emerging_keyword_gives_a_trigger_with_that_keyword() -> None:
    (trigger,) = _emerging_run(12).triggers
    assert trigger.keyword == "漏水"
    assert trigger.observed_value == 12
    assert trigger.keywords[0] == "漏水"
    assert trigger.expected_value is not None and trigger.expected_value < 1
    assert trigger.burst_score is not None and trigger.burst_score > 0
    # one incident per keyword
    other = Trigger(**{**trigger.__dict__, "keyword": "别的"})
    assert trigger.fingerprint != other.fingerprint


def test_emerging_keyword_needs_its_threshold_of_posts() -> None:
    assert _emerging_run(13).triggers == []


def test_known_keywords_do_not_emerge() -> None:
    rule = _rule(EMERGING_KEYWORD, 1)
    evaluator = WindowEvaluator(SIZE)
    for i in range(12):
        report = evaluator.evaluate(
            _window(i, _posts(i, 5, keywords=("商场", "停车"))), [rule], ["a"]
        )
        assert report.triggers == []


# --- the evaluator's bookkeeping -----------------------------------------------------


def test_a_window_at_or_before_the_last_one_gives_an_empty_report() -> None:
    # (threshold rules no longer fire here: an emerging keyword stands in)
    rule = _rule(EMERGING_KEYWORD, 12)
    evaluator = WindowEvaluator(SIZE)
    for i in range(12):
        evaluator.evaluate(
            _window(i, _posts(i, 5, keywords=("商场", "停车"))), [rule], ["a"]
        )
    window = _window(12, _posts(12, 12, negative=3, keywords=("漏水", "商场")))
    report = evaluator.evaluate(window, [rule], ["a"])
    assert report.points and [t.keyword for t in report.triggers] == ["漏水"]
    before = json.dumps(evaluator.snapshot(), sort_keys=True)
    for replay in (window, _window(11, _posts(11, 3, negative=3))):
        report = evaluator.evaluate(replay, [rule], ["a"])
        assert (report.points, report.bursts, report.triggers) == ([], [], [])
        assert report.window_start == replay.start
    assert json.dumps(evaluator.snapshot(), sort_keys=True) == before


def test_the_evaluator_leaves_threshold_rules_to_the_rule_windows() -> None:
    rules = [_rule(kind, 1) for kind in THRESHOLD_KINDS]
    window = _window(0, _posts(0, 5, negative=5, author="u"))
    assert WindowEvaluator(SIZE).evaluate(window, rules, ["a"]).triggers == []


def test_topics_without_posts_still_get_zero_points() -> None:
    evaluator = WindowEvaluator(SIZE)
    report = evaluator.evaluate(
        _window(0, _posts(0, 2, topic="b")),
        [_rule(NEGATIVE_VOLUME, 1)],  # topic a, from the rule
        ["c"],
        complete=False,
    )
    assert report.complete is False
    observed = {p.series: (p.kind, p.key, p.observed) for p in report.points}
    assert observed == {
        "topic:a": ("topic", "a", 0),
        "negative:a": ("negative", "a", 0),
        "topic:b": ("topic", "b", 2),
        "negative:b": ("negative", "b", 0),
        "topic:c": ("topic", "c", 0),
        "negative:c": ("negative", "c", 0),
    }
    assert all(p.window_start == T0 and p.window_seconds == SIZE for p in report.points)


def test_topic_points_carry_counts_and_influence() -> None:
    evaluator = WindowEvaluator(SIZE)
    window = _window(0, _posts(0, 4, negative=2, followers=99))
    report = evaluator.evaluate(window, [], ["a"])
    (point,) = [p for p in report.points if p.series == "negative:a"]
    assert (point.observed, point.posts, point.negative) == (2, 4, 2)
    assert point.negative_influence == pytest.approx(2 * 2.0)  # 1 + 0.5 * log10(100)


def test_keyword_series_appear_only_after_keyword_min_posts() -> None:
    evaluator = WindowEvaluator(SIZE, keyword_min_posts=3)

    def keyword_points(index: int, count: int) -> list[tuple[str, float]]:
        window = _window(index, _posts(index, count, keywords=("漏水",)))
        report = evaluator.evaluate(window, [], ["a"])
        return [(p.key, p.observed) for p in report.points if p.kind == "keyword"]

    assert keyword_points(0, 2) == []
    assert keyword_points(1, 3) == [("漏水", 3)]
    assert keyword_points(2, 1) == [("漏水", 1)]  # followed from now on
    assert "keyword:漏水" in evaluator.detectors


def test_keyword_series_expire_after_a_week_without_posts() -> None:
    evaluator = WindowEvaluator(SIZE, keyword_min_posts=1)
    evaluator.evaluate(_window(0, _posts(0, 2, keywords=("漏水",))), [], ["a"])
    week = 7 * 86_400 // SIZE
    evaluator.evaluate(_window(week, _posts(week, 1)), [], ["a"])
    assert "keyword:漏水" in evaluator.detectors  # exactly a week: kept
    evaluator.evaluate(_window(week + 1, _posts(week + 1, 1)), [], ["a"])
    assert "keyword:漏水" not in evaluator.detectors
    assert "keyword:漏水" not in evaluator.last_active
    assert "topic:a" in evaluator.detectors  # topics never expire


# --- snapshot and restore -------------------------------------------------------------


def _busy_posts(count: int, seed: int = 7) -> list[list[PostFacts]]:
    """Calm, then an incident: keywords, repeat complainers, tiers, a new word.

    The posts of each 5-minute window, spread over its minutes.
    """
    rng = random.Random(seed)
    windows = []
    for i in range(count):
        incident = 40 <= i < 46
        posts = []
        for topic in ("a", "b"):
            n = rng.randint(1, 4) + (25 if incident and topic == "a" else 0)
            words = (
                ["漏水", "商场"] if incident else [rng.choice(["商场", "停车", "影院"])]
            )
            posts += _posts(
                i,
                n,
                negative=n - 3 if incident else rng.randint(0, 1),
                topic=topic,
                keywords=words,
                followers=rng.randint(0, 5000),
                tier=rng.choice([None, "vip", "gold"]),
            )
        if i % 3 == 0 or incident:
            posts += _complaint(i, rng.choice(["u1", "u2"]))
        windows.append(
            [
                replace(post, published=_at(i) + (n * 37) % SIZE)
                for n, post in enumerate(posts)
            ]
        )
    return windows


def _busy_windows(count: int, seed: int = 7) -> list[WindowAggregate]:
    return [_window(i, posts) for i, posts in enumerate(_busy_posts(count, seed))]


RULES = [
    _rule(NEGATIVE_VOLUME, 8),
    _rule(NEGATIVE_SHARE, 0.6, min_volume=10),
    _rule(BURST, 3),
    _rule(EMERGING_KEYWORD, 5),
    _rule(REPEAT_COMPLAINTS, 3, within_seconds=3600),
    AlertRule(name="b-volume", topic="b", kind=RuleKind.NEGATIVE_VOLUME, threshold=2),
]
THRESHOLD_RULES = [rule for rule in RULES if rule.kind in THRESHOLD_KINDS]


@pytest.mark.parametrize("split", [0, 30, 41, 44])
def test_snapshot_restore_continues_identically(split: int) -> None:
    windows = _busy_windows(70)
    original = WindowEvaluator(SIZE, keyword_min_posts=2)
    for window in windows[:split]:
        original.evaluate(window, RULES, ["a", "b"])
    snapshot = json.loads(json.dumps(original.snapshot(), ensure_ascii=False))
    assert set(snapshot) == set(original.snapshot_keys())
    copy = WindowEvaluator(SIZE, keyword_min_posts=2)
    copy.restore(snapshot)
    ours, theirs = [], []
    for window in windows[split:]:
        ours.append(original.evaluate(window, RULES, ["a", "b"]))
        theirs.append(copy.evaluate(window, RULES, ["a", "b"]))
        assert theirs[-1] == ours[-1]
        assert copy.snapshot() == original.snapshot()
    # the run has something to compare: triggers of both window kinds, bursts
    if split < 40:
        kinds = {t.kind for r in ours for t in r.triggers}
        assert kinds == {BURST, EMERGING_KEYWORD}
        assert any(r.bursts for r in ours)


@pytest.mark.parametrize("split", [0, 30, 41, 44])
def test_rule_windows_restored_from_their_writes_continue_identically(
    split: int,
) -> None:
    # The threshold rules of the evaluator's snapshot test, on RuleWindows:
    # its state-log writes, restored at any point, go on the same.
    buckets = _buckets([post for posts in _busy_posts(70) for post in posts])
    end = _at(70)
    original, log = RuleWindows(BUCKET, 0), dict[str, Any]()
    ours = _complete(original, THRESHOLD_RULES, buckets, T0, _at(split))
    apply_state_writes(log, original.writes())
    copy = restore_rule_windows(log, BUCKET)
    assert copy.latches == original.latches
    assert copy.history.buckets.keys() == original.history.buckets.keys()
    for start in range(_at(split), end, BUCKET):
        mine = _complete(original, THRESHOLD_RULES, buckets, start, start + BUCKET)
        theirs = _complete(copy, THRESHOLD_RULES, buckets, start, start + BUCKET)
        assert theirs == mine
        writes = original.writes()
        assert copy.writes() == writes
        apply_state_writes(log, writes)
        ours.update(mine)
    assert restore_rule_windows(log, BUCKET).latches == original.latches
    # the run has something to compare: every threshold kind fired, on both
    # topics, and more than once per rule
    fired = [t for ts in ours.values() for t in ts]
    assert {t.kind for t in fired} == THRESHOLD_KINDS
    assert {t.topic for t in fired} == {"a", "b"}
    assert len(fired) > len(THRESHOLD_RULES)


def test_restore_keeps_the_replay_guard() -> None:
    windows = _busy_windows(3)
    original = WindowEvaluator(SIZE)
    for window in windows:
        original.evaluate(window, RULES, ["a", "b"])
    copy = WindowEvaluator(SIZE)
    copy.restore(json.loads(json.dumps(original.snapshot())))
    assert copy.evaluate(windows[-1], RULES, ["a", "b"]).points == []


# --- trigger codec ---------------------------------------------------------------


_zones = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-14 * 60, 14 * 60)
)
_moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=_zones,
)
_text = st.text(max_size=12)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_evidence = st.builds(
    Evidence,
    post_id=st.text(min_size=1, max_size=8),
    excerpt=_text,
    followers=st.integers(0, 10**9),
    reposts=st.integers(0, 10**9),
    published_at=st.none() | _moments,
    author=st.none() | _text,
    url=st.none() | _text,
)


@st.composite
def _triggers(draw: st.DrawFn) -> Trigger:
    start = draw(_moments)
    return Trigger(
        topic=draw(_text),
        rule=draw(_text),
        kind=draw(st.sampled_from(RULE_KINDS)),
        keyword=draw(st.none() | _text),
        window_start=start,
        window_end=start + draw(st.timedeltas(timedelta(0), timedelta(days=7))),
        observed_value=draw(_finite),
        threshold=draw(st.floats(min_value=1e-6, max_value=1e9)),
        expected_value=draw(st.none() | _finite),
        burst_score=draw(st.none() | _finite),
        author_followers=draw(st.integers(0, 10**9)),
        repeat_complaints=draw(st.integers(0, 10**4)),
        customer_tier=draw(st.none() | st.sampled_from(["vip", "gold"])),
        evidence=tuple(draw(st.lists(_evidence, max_size=3))),
        keywords=tuple(draw(st.lists(_text, max_size=4))),
    )


@settings(max_examples=100)
@given(_triggers())
def test_trigger_round_trips_through_a_json_dict(trigger: Trigger) -> None:
    data = json.loads(json.dumps(trigger_to_dict(trigger)))
    restored = trigger_from_dict(data)
    assert restored == trigger
    assert restored.window_start.utcoffset() == trigger.window_start.utcoffset()
    assert restored.fingerprint == trigger.fingerprint


def test_triggers_from_the_evaluator_and_rule_windows_round_trip() -> None:
    posts = _busy_posts(50)
    evaluator = WindowEvaluator(SIZE)
    triggers = [
        t
        for i, group in enumerate(posts)
        for t in evaluator.evaluate(_window(i, group), RULES, ["a", "b"]).triggers
    ]
    fired = _complete(
        RuleWindows(BUCKET, 0),
        THRESHOLD_RULES,
        _buckets([post for group in posts for post in group]),
        T0,
        _at(50),
    )
    triggers += [t for ts in fired.values() for t in ts]
    # (hot_word triggers: tests/unit/test_hotwordrules.py)
    assert {t.kind for t in triggers} == set(RULE_KINDS) - {"hot_word"}
    for trigger in triggers:
        assert (
            trigger_from_dict(json.loads(json.dumps(trigger_to_dict(trigger))))
            == trigger
        )


# --- amending a window a late partial corrected ---------------------------------


def test_amended_points_keep_the_first_verdict_and_take_the_new_counts() -> None:
    evaluator = WindowEvaluator(SIZE)
    index = _calm(evaluator)
    first = _window(index, _posts(index, 2, negative=1))
    report = evaluator.evaluate(first, [], ["a"])
    verdicts = point_verdicts(report)
    assert set(verdicts) == {"topic:a", "negative:a"}  # keywords are not kept
    before = {point.series: point for point in report.points}

    whole = _window(index, _posts(index, 2, negative=1))
    whole.merge(_window(index, _posts(index, 5, negative=4, prefix="late")))
    whole.merge(_window(index, _posts(index, 1, topic="b", prefix="new")))
    points = {point.series: point for point in amended_points(whole, verdicts)}

    assert set(points) == {"topic:a", "negative:a", "topic:b", "negative:b"}
    assert (points["topic:a"].observed, points["negative:a"].observed) == (7, 5)
    assert points["topic:a"].posts == 7 and points["topic:a"].negative == 5
    for series in ("topic:a", "negative:a"):
        assert points[series].expected == before[series].expected
        assert points[series].score == before[series].score
        assert points[series].anomalous == before[series].anomalous
    assert points["topic:b"].observed == 1 and points["topic:b"].expected == 0.0
    assert all(point.window_start == _at(index) for point in points.values())
    # The verdicts survive the state log (JSON) unchanged.
    assert amended_points(whole, json.loads(json.dumps(verdicts))) == list(
        amended_points(whole, verdicts)
    )
