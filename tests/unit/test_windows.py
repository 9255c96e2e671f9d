"""Event-time windows: assignment, watermark, lateness, restart-safe state, merge."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from monitor.analysis.windows import (
    AMENDED,
    AUTHOR_LIMIT,
    AUTHOR_POSTS_LIMIT,
    DROPPED,
    DUPLICATE,
    EVIDENCE_LIMIT,
    EXCERPT_CHARS,
    GLOBAL_KEYWORD_LIMIT,
    TAKEN,
    TOPIC_KEYWORD_LIMIT,
    MergeOutcome,
    PartitionLedger,
    PartitionWindows,
    PostFacts,
    TopicCounts,
    WindowAggregate,
    WindowMerger,
    influence,
    to_datetime,
    window_start,
)

SIZE = 60
GRACE = 30


def _post(
    post_id: str,
    published: float,
    *,
    negative: bool = False,
    topics: Sequence[str] = (),
    keywords: Sequence[str] = (),
    author: str | None = None,
    followers: int = 0,
    reposts: int = 0,
    tier: str | None = None,
) -> PostFacts:
    return PostFacts(
        post_id=post_id,
        published=published,
        negative=negative,
        topics=tuple(topics),
        keywords=tuple(keywords),
        author=author,
        followers=followers,
        reposts=reposts,
        excerpt=f"text of {post_id}",
        customer_tier=tier,
    )


def _json(data: Any) -> Any:
    return json.loads(json.dumps(data, ensure_ascii=False))


def _comparable(window: WindowAggregate) -> dict[str, Any]:
    """``to_dict(bounded=False)`` with float sums split off for approx checks."""
    data = window.to_dict(bounded=False)
    for counts in data["topics"].values():
        counts["negative_influence"] = pytest.approx(counts["negative_influence"])
    return data


# --- influence and window_start ----------------------------------------------


@pytest.mark.parametrize(
    ("reposts", "followers", "expected"),
    [
        (0, 0, 1.0),
        (9, 0, 2.0),
        (0, 99, 2.0),
        (99, 9_999, 5.0),  # the module docstring's example
        (-5, -100, 1.0),  # bad counts are clamped, never below 1
    ],
)
def test_influence_table(reposts: int, followers: int, expected: float) -> None:
    assert influence(reposts, followers) == pytest.approx(expected)


@given(
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
def test_influence_is_at_least_one_and_grows_with_both_counts(
    reposts: int, followers: int, more_reposts: int, more_followers: int
) -> None:
    base = influence(reposts, followers)
    assert base >= 1.0
    assert influence(reposts + more_reposts, followers) >= base
    assert influence(reposts, followers + more_followers) >= base


@pytest.mark.parametrize(
    ("moment", "size", "expected"),
    [
        (0, 60, 0),
        (59.999, 60, 0),
        (60, 60, 60),
        (119.5, 60, 60),
        (-0.5, 60, -60),
        (1_700_000_123.4, 300, 1_700_000_100),
    ],
)
def test_window_start_table(moment: float, size: int, expected: int) -> None:
    assert window_start(moment, size) == expected


@given(
    st.floats(min_value=-1e9, max_value=4e9, allow_nan=False),
    st.integers(1, 86_400),
)
def test_window_start_holds_the_moment(moment: float, size: int) -> None:
    start = window_start(moment, size)
    assert start % size == 0
    assert start <= moment < start + size


# --- PostFacts.from_scored ---------------------------------------------------


def _scored(**overrides: Any) -> dict[str, Any]:
    scored: dict[str, Any] = {
        "post_id": "p1",
        "source": "weibo",
        "text": "空调" * 100,
        "label": "negative",
        "keywords": ["空调", "异味", "空调", "霉味"],
        "topics": ["空调异味"],
        "published_at": "2026-11-20T13:05:00+08:00",
        "author": "小王",
        "followers": 1200,
        "reposts": 3,
        "url": "https://example.com/p1",
        "meta": {"customer_tier": "VIP"},
    }
    scored.update(overrides)
    return scored


def test_from_scored_reads_the_dict_form() -> None:
    facts = PostFacts.from_scored(_scored())
    assert facts == PostFacts(
        post_id="p1",
        published=datetime(2026, 11, 20, 5, 5, tzinfo=timezone.utc).timestamp(),
        negative=True,
        topics=("空调异味",),
        keywords=("空调", "异味", "霉味"),  # deduplicated, order kept
        author="小王",
        followers=1200,
        reposts=3,
        excerpt="空调" * (EXCERPT_CHARS // 2),
        url="https://example.com/p1",
        customer_tier="vip",
    )
    assert len(facts.excerpt) == EXCERPT_CHARS


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"label": "neutral"}, "negative", False),
        ({"label": "positive"}, "negative", False),
        ({"published_at": "2026-11-20T05:05:00Z"}, "published", 1_795_151_100.0),
        (
            {"published_at": datetime(2026, 11, 20, 5, 5, tzinfo=timezone.utc)},
            "published",
            1_795_151_100.0,
        ),
        ({"meta": None}, "customer_tier", None),
        ({"meta": {}}, "customer_tier", None),
        ({"meta": ["vip"]}, "customer_tier", None),
        ({"meta": {"customer_tier": "Gold"}}, "customer_tier", "gold"),
        ({"followers": None, "reposts": None}, "followers", 0),
        ({"topics": None}, "topics", ()),
        ({"keywords": None}, "keywords", ()),
        ({"text": None}, "excerpt", ""),
        ({"author": None}, "author", None),
    ],
)
def test_from_scored_field_table(
    overrides: dict[str, Any], field: str, expected: Any
) -> None:
    assert getattr(PostFacts.from_scored(_scored(**overrides)), field) == expected


# --- TopicCounts and WindowAggregate -----------------------------------------


def test_topic_counts_count_negative_posts_with_influence_authors_and_tiers() -> None:
    counts = TopicCounts()
    counts.add(_post("a", 1, negative=True, author="u", followers=9_999, reposts=99))
    counts.add(_post("b", 2, negative=True, author="u", tier="vip"))
    counts.add(_post("c", 3, negative=False, author="u", keywords=("k",)))
    counts.add(_post("d", 4, negative=True))
    assert (counts.posts, counts.negative) == (4, 3)
    assert counts.negative_influence == pytest.approx(5.0 + 1.0 + 1.0)
    assert counts.negative_authors == {"u": [2, ["a", "b"]]}
    assert counts.customer_tiers == Counter({"vip": 1})
    assert counts.keywords == Counter({"k": 1})
    # best evidence first: most followers, then reposts, then earliest
    assert [item["post_id"] for item in counts.evidence] == ["a", "b", "d"]


def test_topic_counts_bound_evidence_and_author_post_ids() -> None:
    counts = TopicCounts()
    for i in range(EVIDENCE_LIMIT + AUTHOR_POSTS_LIMIT + 5):
        counts.add(_post(f"p{i:03d}", i, negative=True, author="u", followers=i))
    total = EVIDENCE_LIMIT + AUTHOR_POSTS_LIMIT + 5
    assert counts.negative_authors["u"][0] == total
    assert counts.negative_authors["u"][1] == [
        f"p{i:03d}" for i in range(AUTHOR_POSTS_LIMIT)
    ]
    assert [item["post_id"] for item in counts.evidence] == [
        f"p{i:03d}" for i in range(total - 1, total - 1 - EVIDENCE_LIMIT, -1)
    ]


def test_window_aggregate_counts_topics_and_keywords() -> None:
    window = WindowAggregate(120, SIZE)
    window.add(_post("a", 125, negative=True, topics=("t1", "t2"), keywords=("x",)))
    window.add(_post("b", 170, topics=("t1",), keywords=("x", "y")))
    assert window.end == 180
    assert (window.posts, window.negative, window.max_published) == (2, 1, 170)
    assert window.keywords == {"x": [2, 1], "y": [1, 0]}
    assert (window.topics["t1"].posts, window.topics["t1"].negative) == (2, 1)
    assert (window.topics["t2"].posts, window.topics["t2"].negative) == (1, 1)


def test_merge_of_another_window_is_refused() -> None:
    with pytest.raises(ValueError, match="same window"):
        WindowAggregate(0, SIZE).merge(WindowAggregate(60, SIZE))
    with pytest.raises(ValueError, match="same window"):
        WindowAggregate(0, SIZE).merge(WindowAggregate(0, 2 * SIZE))


def test_merge_keeps_evidence_once_per_post() -> None:
    first, second = WindowAggregate(0, SIZE), WindowAggregate(0, SIZE)
    post = _post("same", 5, negative=True, topics=("t",), followers=10)
    first.add(post)
    second.add(post)
    first.merge(second)
    assert [item["post_id"] for item in first.topics["t"].evidence] == ["same"]
    assert first.topics["t"].negative == 2  # counts are not deduplicated here


_facts = st.builds(
    _post,
    post_id=st.text("abcdef", min_size=1, max_size=3),
    published=st.floats(0, SIZE, exclude_max=True),
    negative=st.booleans(),
    topics=st.lists(st.sampled_from(["t1", "t2", "t3"]), max_size=2, unique=True),
    keywords=st.lists(st.sampled_from("uvwxyz"), max_size=3, unique=True),
    author=st.none() | st.sampled_from(["u1", "u2"]),
    followers=st.integers(0, 10**6),
    reposts=st.integers(0, 10**4),
    tier=st.none() | st.sampled_from(["vip", "gold"]),
)


@settings(max_examples=60)
@given(st.lists(_facts, max_size=25), st.data())
def test_merged_partials_equal_counting_everything_in_one(
    posts: list[PostFacts], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(posts)))
    whole, first, second = (WindowAggregate(0, SIZE) for _ in range(3))
    for post in posts:
        whole.add(post)
    for post in posts[:cut]:
        first.add(post)
    for post in posts[cut:]:
        second.add(post)
    first.merge(second)
    assert _comparable(first) == _comparable(whole)


@settings(max_examples=60)
@given(st.lists(_facts, max_size=25), st.booleans())
def test_to_dict_from_dict_round_trips_through_json(
    posts: list[PostFacts], bounded: bool
) -> None:
    window = WindowAggregate(0, SIZE)
    for post in posts:
        window.add(post)
    # small windows are below every bound: bounded and unbounded agree
    restored = WindowAggregate.from_dict(_json(window.to_dict(bounded=bounded)))
    assert restored == window
    assert restored.to_dict(bounded=False) == window.to_dict(bounded=False)


def test_bounded_to_dict_keeps_the_most_frequent_keywords_and_authors() -> None:
    window = WindowAggregate(0, SIZE)
    many = [f"w{i:04d}" for i in range(GLOBAL_KEYWORD_LIMIT + 50)]
    window.add(_post("all", 1, topics=("t",), keywords=many))
    window.add(_post("hot", 2, topics=("t",), keywords=("zz-hot",)))
    window.add(_post("hot2", 3, topics=("t",), keywords=("zz-hot",)))
    for i in range(AUTHOR_LIMIT + 20):
        window.add(_post(f"n{i}", 4, negative=True, topics=("t",), author=f"a{i}"))
    window.add(_post("again", 5, negative=True, topics=("t",), author="a100"))

    full = window.to_dict(bounded=False)
    assert len(full["keywords"]) == GLOBAL_KEYWORD_LIMIT + 51
    assert len(full["topics"]["t"]["keywords"]) == GLOBAL_KEYWORD_LIMIT + 51
    assert len(full["topics"]["t"]["negative_authors"]) == AUTHOR_LIMIT + 20
    assert WindowAggregate.from_dict(_json(full)) == window

    bounded = window.to_dict(bounded=True)
    assert len(bounded["keywords"]) == GLOBAL_KEYWORD_LIMIT
    assert bounded["keywords"]["zz-hot"] == [2, 0]
    # equal counts: the alphabetically first words stay
    assert "w0000" in bounded["keywords"]
    assert f"w{GLOBAL_KEYWORD_LIMIT + 49:04d}" not in bounded["keywords"]
    topic = bounded["topics"]["t"]
    assert len(topic["keywords"]) == TOPIC_KEYWORD_LIMIT
    assert topic["keywords"]["zz-hot"] == 2
    assert len(topic["negative_authors"]) == AUTHOR_LIMIT
    assert next(iter(topic["negative_authors"])) == "a100"  # most negative first
    assert topic["negative_authors"]["a100"] == [2, ["n100", "again"]]
    # counts themselves are never cut
    restored = WindowAggregate.from_dict(_json(bounded))
    assert (restored.posts, restored.negative) == (window.posts, window.negative)
    assert restored.topics["t"].posts == window.topics["t"].posts


# --- PartitionWindows ----------------------------------------------------------


@pytest.mark.parametrize(("size", "grace"), [(0, 0), (-60, 0), (60, -1)])
def test_partition_windows_reject_bad_settings(size: int, grace: int) -> None:
    with pytest.raises(ValueError):
        PartitionWindows(size, grace)


@pytest.mark.parametrize(
    ("published", "start"), [(0, 0), (59.999, 0), (60, 60), (119.999, 60)]
)
def test_post_goes_to_the_window_holding_its_event_time(
    published: float, start: int
) -> None:
    windows = PartitionWindows(SIZE, GRACE)
    result = windows.add(_post("p", published))
    assert (result.counted, result.window_start) == (True, start)
    assert windows.open[start].posts == 1


def test_watermark_is_latest_event_time_minus_grace() -> None:
    windows = PartitionWindows(SIZE, GRACE)
    assert windows.watermark is None
    windows.add(_post("a", 100))
    assert windows.watermark == 70
    windows.add(_post("b", 80))  # earlier posts never move it back
    assert windows.watermark == 70
    windows.add(_post("c", 130.5))
    assert windows.watermark == 100.5


def test_window_closes_once_the_watermark_reaches_its_end() -> None:
    windows = PartitionWindows(SIZE, GRACE)
    assert windows.close() == []
    windows.add(_post("a", 10))
    windows.add(_post("b", 89.999))  # watermark 59.999 < end 60
    assert windows.close() == []
    windows.add(_post("c", 5))  # within grace: still counted
    windows.add(_post("d", 90))  # watermark 60 == end of window 0
    (closed,) = windows.close()
    assert (closed.start, closed.posts) == (0, 2)
    assert windows.closed_through == 0
    assert list(windows.open) == [60]
    assert windows.close() == []  # nothing new to close


def test_post_beyond_grace_is_refused_and_reported_late() -> None:
    windows = PartitionWindows(SIZE, GRACE)
    windows.add(_post("a", 10))
    windows.add(_post("b", 95))
    windows.close()
    result = windows.add(_post("late", 59.9))
    assert (result.counted, result.late, result.window_start) == (False, True, 0)
    assert windows.max_published == 95
    assert 0 not in windows.open
    assert windows.add(_post("ok", 60)).counted  # the next window is open


def test_redelivered_post_in_an_open_window_is_counted_once() -> None:
    windows = PartitionWindows(SIZE, GRACE)
    assert windows.add(_post("a", 10)).counted
    again = windows.add(_post("a", 10))
    assert (again.counted, again.duplicate, again.late) == (False, True, False)
    assert windows.open[0].posts == 1


def test_windows_that_do_not_track_ids_leave_copies_to_the_caller() -> None:
    windows = PartitionWindows(SIZE, GRACE, track_ids=False)
    assert windows.add(_post("a", 10)).counted
    assert windows.add(_post("a", 10)).counted  # the ledger's memory decides
    assert windows.open[0].posts == 2
    assert windows.seen == {}


def test_close_emits_windows_with_posts_and_the_latest_closed_as_a_marker() -> None:
    windows = PartitionWindows(SIZE, GRACE)
    windows.add(_post("a", 10))
    windows.add(_post("b", 400))  # watermark 370: windows 0..300 are done
    first = windows.close()
    # the empty windows 60..240 are not sent; 300 says "closed through here"
    assert [w.start for w in first] == [0, 300]
    assert [w.posts for w in first] == [1, 0]
    assert all(w.size == SIZE for w in first)
    assert windows.closed_through == 300
    windows.add(_post("c", 700))  # watermark 670: 360..600
    second = windows.close()
    assert [w.start for w in second] == [360, 600]
    assert [w.posts for w in second] == [1, 0]
    windows.add(_post("d", 750))  # watermark 720: window 660 (with c) closes
    assert [(w.start, w.posts) for w in windows.close()] == [(660, 1)]  # no marker


def test_a_far_future_post_closes_in_two_partials() -> None:
    windows = PartitionWindows(300, 120)
    windows.add(_post("now", 1_800_000_000))
    year = 365 * 86_400
    windows.add(_post("next-year", 1_800_000_000 + year))
    closed = windows.close()
    assert [w.posts for w in closed] == [1, 0]
    assert closed[0].start == window_start(1_800_000_000, 300)
    assert closed[1].start == window_start(1_800_000_000 + year - 120, 300) - 300
    assert windows.closed_through == closed[1].start
    assert list(windows.open) == [window_start(1_800_000_000 + year, 300)]


def test_post_behind_the_watermark_is_late_before_any_window_closed() -> None:
    windows = PartitionWindows(SIZE, GRACE)
    windows.add(_post("a", 1000))  # watermark 970: windows up to 900 are over
    assert windows.close() == []
    old = windows.add(_post("old", 100))
    assert (old.counted, old.late) == (False, True)
    assert windows.add(_post("edge", 900)).late  # window 900 ends at 960
    assert windows.add(_post("in-grace", 960)).counted  # window 960 ends at 1020
    windows.add(_post("b", 1050))  # watermark 1020
    closed = windows.close()
    assert [(w.start, w.posts) for w in closed] == [(960, 2)]


def test_flush_closes_every_open_window() -> None:
    windows = PartitionWindows(SIZE, GRACE)
    assert windows.close(flush=True) == []
    windows.add(_post("a", 10))
    windows.add(_post("b", 200))
    closed = windows.close(flush=True)
    # the latest window flushed has posts: it is the marker, nothing empty goes
    assert [(w.start, w.posts) for w in closed] == [(0, 1), (180, 1)]
    assert windows.open == {} and windows.closed_through == 180
    assert windows.close(flush=True) == []
    assert windows.add(_post("c", 239)).late  # its window was flushed
    assert windows.add(_post("d", 250)).counted
    assert [w.start for w in windows.close(flush=True)] == [240]


@settings(max_examples=80)
@given(
    st.lists(
        st.tuples(st.floats(0, 900), st.booleans()),
        min_size=1,
        max_size=40,
    )
)
def test_partition_windows_count_every_post_that_is_not_late(
    schedule: list[tuple[float, bool]],
) -> None:
    """Random arrival order, closing after random posts, then a flush."""
    windows = PartitionWindows(SIZE, GRACE)
    emitted: list[WindowAggregate] = []
    expected: Counter[int] = Counter()
    cutoff = -math.inf  # the watermark at the latest close()

    def check(closed: list[WindowAggregate]) -> None:
        # windows with posts, then at most one empty marker: the latest closed
        assert all(w.posts for w in closed[:-1])
        if closed:
            assert closed[-1].start == windows.closed_through
        emitted.extend(closed)

    for i, (published, close_now) in enumerate(schedule):
        start = window_start(published, SIZE)
        result = windows.add(_post(f"p{i}", published))
        is_late = start + SIZE <= cutoff
        assert result.late == is_late and result.counted == (not is_late)
        if result.counted:
            expected[start] += 1
        if close_now:
            watermark = windows.watermark
            assert watermark is not None
            closed = windows.close()
            assert all(w.end <= watermark for w in closed)
            check(closed)
            cutoff = watermark
    check(windows.close(flush=True))
    starts = [w.start for w in emitted]
    assert starts == sorted(set(starts))  # in order, each window once
    assert {w.start: w.posts for w in emitted if w.posts} == dict(expected)
    assert windows.open == {}


# --- PartitionLedger: restart-safe counting ------------------------------------


def _restore(log: dict[str, Any]) -> PartitionLedger:
    return PartitionLedger.restore(
        3, SIZE, GRACE, [(key, _json(value)) for key, value in log.items()]
    )


def _persist(log: dict[str, Any], writes: dict[str, Any], deletes: bool = True) -> None:
    for key, value in writes.items():
        if value is None:
            if deletes:
                log.pop(key, None)
        else:
            log[key] = value


def test_ledger_counts_a_batch_and_writes_one_delta_per_window() -> None:
    ledger = PartitionLedger(3, SIZE, GRACE)
    outcome = ledger.apply(
        [(0, _post("a", 10)), (1, _post("b", 20)), (2, _post("c", 70))]
    )
    assert (outcome.counted, outcome.late, outcome.closed) == (3, 0, [])
    assert sorted(outcome.writes) == ["3:d:0:2", "3:d:60:2", "3:meta"]
    # the watermark (40) is past window -60: later posts for it are late
    assert outcome.writes["3:meta"]["closed_through"] == -60
    assert outcome.writes["3:d:0:2"]["window"]["posts"] == 2
    assert ledger.applied_offset == 2


def test_ledger_skips_offsets_already_applied() -> None:
    ledger = PartitionLedger(3, SIZE, GRACE)
    ledger.apply([(0, _post("a", 10)), (1, _post("b", 20))])
    outcome = ledger.apply([(1, _post("b", 20)), (2, _post("c", 30))])
    assert (outcome.skipped, outcome.counted) == (1, 1)
    assert ledger.windows.open[0].posts == 3


def test_ledger_deletes_deltas_of_closed_windows_and_writes_meta() -> None:
    ledger = PartitionLedger(3, SIZE, GRACE)
    ledger.apply([(0, _post("a", 10))])
    outcome = ledger.apply([(1, _post("b", 100))])
    # -60 (passed by the first batch's watermark, empty) is not sent again
    assert [(w.start, w.posts) for w in outcome.closed] == [(0, 1)]
    assert outcome.writes["3:d:0:0"] is None
    assert outcome.writes["3:meta"] == {
        "offset": 1,
        "closed_through": 0,
        "max_published": 100,
    }


def test_ledger_batch_of_only_late_posts_still_records_its_offset() -> None:
    ledger = PartitionLedger(3, SIZE, GRACE)
    log: dict[str, Any] = {}
    _persist(log, ledger.apply([(0, _post("a", 10)), (1, _post("b", 100))]).writes)
    outcome = ledger.apply([(2, _post("late", 5))])
    assert (outcome.late, outcome.counted) == (1, 0)
    assert outcome.writes == {"3:meta": ledger._meta()}
    _persist(log, outcome.writes)
    assert _restore(log).applied_offset == 2


def test_restore_ignores_deltas_of_windows_already_closed() -> None:
    ledger = PartitionLedger(3, SIZE, GRACE)
    log: dict[str, Any] = {}
    _persist(log, ledger.apply([(0, _post("a", 10)), (1, _post("b", 70))]).writes)
    # window 0 closes; its delta's delete is lost, the meta entry lands
    _persist(log, ledger.apply([(2, _post("c", 100))]).writes, deletes=False)
    assert "3:d:0:1" in log
    restored = _restore(log)
    assert restored.windows.closed_through == 0
    assert sorted(restored.windows.open) == [60]
    assert restored.windows.open[60].posts == 2
    assert restored.applied_offset == 2
    assert restored.windows.max_published == 100
    assert restored.apply([(3, _post("late", 30))]).late == 1


def test_a_delta_left_by_a_failed_batch_is_not_counted_once_the_offset_passes() -> None:
    """Meta lost, the batch handled again cut otherwise, its deletes lost."""
    ledger = PartitionLedger(3, SIZE, GRACE)
    log: dict[str, Any] = {}
    _persist(log, ledger.apply([(0, _post("a", 10))]).writes)
    failed = ledger.apply([(1, _post("b", 12)), (2, _post("c", 13))]).writes
    _persist(log, {key: value for key, value in failed.items() if key != "3:meta"})
    restored = _restore(log)
    assert restored.applied_offset == 0 and restored._stale_keys == ["3:d:0:2"]
    again = restored.apply(
        [(1, _post("b", 12)), (2, _post("c", 13)), (3, _post("d", 14))]
    ).writes
    assert again["3:meta"]["stale"] == ["3:d:0:2"]
    _persist(log, again, deletes=False)
    assert "3:d:0:2" in log  # its delete did not land
    assert _restore(log).windows.open[0].posts == 4  # a, b, c, d: once each


def test_restore_rebuilds_open_windows_and_dedup_state() -> None:
    ledger = PartitionLedger(3, SIZE, GRACE)
    log: dict[str, Any] = {}
    _persist(log, ledger.apply([(0, _post("a", 10)), (1, _post("b", 20))]).writes)
    _persist(log, ledger.apply([(2, _post("c", 30))]).writes)
    restored = _restore(log)
    assert restored.applied_offset == 2
    assert restored.windows.max_published == 30
    assert _comparable(restored.windows.open[0]) == _comparable(ledger.windows.open[0])
    # the same post redelivered at a new offset is recognised
    assert restored.apply([(3, _post("a", 10))]).duplicates == 1
    assert restored.windows.open[0].posts == 3


def test_restore_of_an_empty_log_starts_from_scratch() -> None:
    restored = _restore({})
    assert restored.applied_offset == -1
    assert restored.windows.max_published is None
    assert restored.windows.open == {}


YEAR = 365 * 86_400


@pytest.mark.parametrize("dedup_horizon", [0, 7 * 86_400])
def test_a_post_a_year_ahead_costs_two_partials_and_a_few_writes(
    dedup_horizon: int,
) -> None:
    ledger = PartitionLedger(3, 300, 120, dedup_horizon=dedup_horizon)
    now = 1_800_000_000
    ledger.apply([(0, _post("now", now))])
    outcome = ledger.apply([(1, _post("next-year", now + YEAR))])
    assert [w.posts for w in outcome.closed] == [1, 0]  # the window, the marker
    # the new delta, the old one's delete, two closed partials, meta (+ ids)
    assert len(outcome.writes) <= 5 + (2 if dedup_horizon else 0)
    assert ledger.windows.closed_through == outcome.closed[-1].start
    assert list(ledger.windows.open) == [window_start(now + YEAR, 300)]
    # the quiet year costs nothing more on the next close either
    after = ledger.apply([(2, _post("a-day-on", now + YEAR + 86_400))])
    assert [w.posts for w in after.closed] == [1, 0]
    # ... and the deletes of the two partials logged before
    assert len(after.writes) <= 7 + (2 if dedup_horizon else 0)


def test_a_quiet_gap_fills_with_empty_windows_in_the_merge() -> None:
    """The partition sends no empty window; the merge emits them all the same."""
    ledger = PartitionLedger(0, SIZE, GRACE)
    merger = WindowMerger(1, SIZE, timeout=30)
    emitted: list[tuple[int, int]] = []
    for offset, moment in enumerate([10, 400, 700, 1000]):
        for partial in ledger.apply([(offset, _post(f"p{offset}", moment))]).closed:
            done = merger.add(0, partial, now=0).completed
            emitted += [(w.start, w.posts) for w, complete in done if complete]
    for partial in ledger.flush().closed:
        done = merger.add(0, partial, now=0).completed
        emitted += [(w.start, w.posts) for w, complete in done if complete]
    starts = [start for start, _ in emitted]
    assert starts == list(range(0, 1000 // SIZE * SIZE + SIZE, SIZE))
    assert {start: posts for start, posts in emitted if posts} == {
        0: 1,
        360: 1,
        660: 1,
        960: 1,
    }


def _cuts(data: st.DataObject, length: int, label: str) -> list[int]:
    """Random batch boundaries of ``range(length)``, as sorted cut points."""
    inner = data.draw(
        st.lists(st.integers(1, max(length - 1, 1)), max_size=6, unique=True),
        label=label,
    )
    return [0, *sorted(cut for cut in inner if 0 < cut < length), length]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_ledger_counts_each_post_once_across_a_crash(data: st.DataObject) -> None:
    """Crash at a random batch, restore from the state log, replay; compare."""
    unique = data.draw(
        st.lists(
            st.tuples(
                st.integers(-40, 100),  # step of event time from the previous post
                st.booleans(),
                st.sampled_from(["t1", "t2"]),
                st.sampled_from(["x", "y", "z"]),
                st.sampled_from(["u1", "u2", None]),
            ),
            min_size=1,
            max_size=20,
        ),
        label="posts",
    )
    posts, moment = [], 500.0
    for i, (step, negative, topic, keyword, author) in enumerate(unique):
        moment = max(0.0, moment + step)
        posts.append(
            _post(
                f"p{i}",
                moment,
                negative=negative,
                topics=(topic,),
                keywords=(keyword,),
                author=author,
                followers=i,
            )
        )
    # deliveries: every post once, some again later (at-least-once upstream)
    again = data.draw(
        st.lists(st.integers(0, len(posts) - 1), max_size=8), label="redelivered"
    )
    deliveries = [*posts]
    for index in again:
        position = data.draw(st.integers(index + 1, len(deliveries)))
        deliveries.insert(position, posts[index])
    stream = list(enumerate(deliveries))  # (offset, post)

    cuts = _cuts(data, len(stream), "batches")
    batches = [stream[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    crash = data.draw(st.integers(0, len(batches)), label="crash before batch")
    lost = crash < len(batches) and data.draw(st.booleans(), label="lost writes")
    drop_deletes = data.draw(st.booleans(), label="last deletes lost")

    merger = WindowMerger(1, SIZE, timeout=math.inf)
    accepted: dict[int, WindowAggregate] = {}
    output: list[WindowAggregate] = []

    def send(closed: list[WindowAggregate]) -> None:
        for partial in closed:
            outcome = merger.add(0, partial, now=0.0)
            if outcome.accepted:
                accepted[partial.start] = partial
            else:  # a window closed again after the crash: the very same counts
                assert outcome.status == DUPLICATE
                assert _comparable(partial) == _comparable(accepted[partial.start])
            for window, complete in outcome.completed:
                assert complete
                output.append(window)

    effective: list[tuple[list[tuple[int, PostFacts]], Any]] = []
    original = PartitionLedger(3, SIZE, GRACE)
    log: dict[str, Any] = {}
    for number, batch in enumerate(batches[:crash]):
        outcome = original.apply(batch)
        send(outcome.closed)
        _persist(
            log, outcome.writes, deletes=not (drop_deletes and number == crash - 1)
        )
        effective.append((batch, outcome))
    if lost:  # the windows went out, the state-log writes did not
        send(original.apply(batches[crash]).closed)

    restored = _restore(log)
    resume = cuts[crash]
    earlier = data.draw(st.integers(0, resume), label="replay from")
    rest = stream[earlier:]
    if lost:  # a redelivered batch ends where the lost one ended
        head = cuts[crash + 1] - earlier
        replay = [rest[:head], *(rest[head:][i : i + 3] for i in range(0, 99, 3))]
    else:
        replay_cuts = _cuts(data, len(rest), "replay batches")
        replay = [rest[a:b] for a, b in zip(replay_cuts, replay_cuts[1:], strict=False)]
    for batch in filter(None, replay):
        outcome = restored.apply(batch)
        send(outcome.closed)
        effective.append((batch, outcome))
    send(restored.flush().closed)

    # The reference: windows close at the end of each batch, so a post is
    # late if its window ended at or before the watermark after an earlier
    # batch (latest event time counted, minus the grace period).
    expected: dict[int, WindowAggregate] = {}
    counted: set[str] = set()
    applied, latest = -1, -math.inf
    late = duplicates = skipped = 0
    for batch, _ in effective:
        cutoff = latest - GRACE
        for offset, post in batch:
            start = window_start(post.published, SIZE)
            if offset <= applied:
                skipped += 1
            elif start + SIZE <= cutoff:
                late += 1
            elif post.post_id in counted:
                duplicates += 1
            else:
                counted.add(post.post_id)
                latest = max(latest, post.published)
                expected.setdefault(start, WindowAggregate(start, SIZE)).add(post)
        applied = max(applied, batch[-1][0])
    assert sum(o.late for _, o in effective) == late
    assert sum(o.duplicates for _, o in effective) == duplicates
    assert sum(o.skipped for _, o in effective) == skipped
    assert sum(o.counted for _, o in effective) == len(counted)

    starts = [w.start for w in output]
    assert starts == list(range(starts[0], starts[-1] + SIZE, SIZE))
    assert {w.start: _comparable(w) for w in output if w.posts} == {
        start: _comparable(w) for start, w in expected.items()
    }
    assert sum(w.posts for w in output) == len(counted)
    assert restored.windows.open == {}


# --- WindowMerger ----------------------------------------------------------------


def _partial(start: int, *post_ids: str, topic: str = "t") -> WindowAggregate:
    window = WindowAggregate(start, SIZE)
    for post_id in post_ids:
        window.add(_post(post_id, start + 1, topics=(topic,), negative=True))
    return window


def _summary(done: list[tuple[WindowAggregate, bool]]) -> list[tuple[int, int, bool]]:
    return [(w.start, w.posts, complete) for w, complete in done]


def test_merger_completes_a_window_once_every_partition_closed_it() -> None:
    merger = WindowMerger(3, SIZE, timeout=30)
    assert merger.add(0, _partial(0, "a"), now=0) == MergeOutcome(TAKEN)
    assert merger.add(1, _partial(0, "b", "c"), now=1) == MergeOutcome(TAKEN)
    outcome = merger.add(2, _partial(0), now=2)
    assert outcome.accepted and outcome.amended is None
    ((window, complete),) = outcome.completed
    assert complete and (window.start, window.posts, window.negative) == (0, 3, 3)
    assert window.topics["t"].negative_authors == {}
    assert merger.emitted_through == 0
    assert merger.amendable == {}  # every partition is in: nothing to amend


def test_merger_waits_for_partitions_that_have_not_reached_the_window() -> None:
    merger = WindowMerger(2, SIZE, timeout=30)
    assert merger.add(0, _partial(0, "a"), now=0).completed == []
    assert merger.add(0, _partial(60, "b"), now=0).completed == []
    # partition 1 starts at 60: it had nothing in 0, which is then complete too
    done = merger.add(1, _partial(60, "c"), now=0).completed
    assert _summary(done) == [(0, 1, True), (60, 2, True)]


def test_merger_emits_in_order_and_fills_gaps_with_empty_windows() -> None:
    merger = WindowMerger(1, SIZE, timeout=30)
    merger.add(0, _partial(0, "a"), now=0)
    done = merger.add(0, _partial(180, "b"), now=0).completed
    assert _summary(done) == [(60, 0, True), (120, 0, True), (180, 1, True)]
    assert all(w.size == SIZE for w, _ in done)


def test_merger_ignores_duplicate_partials() -> None:
    merger = WindowMerger(2, SIZE, timeout=30)
    assert merger.add(0, _partial(0, "a"), now=0).status == TAKEN
    again = merger.add(0, _partial(0, "a"), now=0)
    assert again == MergeOutcome(DUPLICATE) and not again.accepted
    done = merger.add(1, _partial(0, "b"), now=0).completed
    assert [w.posts for w, _ in done] == [2]
    assert merger.add(1, _partial(0, "b"), now=0).status == DUPLICATE
    assert merger.add(0, _partial(0, "z"), now=0).status == DUPLICATE
    assert merger.pending == {}


def test_merger_waits_for_a_live_partition_however_long_it_takes() -> None:
    merger = WindowMerger(2, SIZE, timeout=30)
    merger.add(0, _partial(0, "a"), now=100)
    for now in range(100, 1000, 10):  # partition 1 is catching up, still open
        assert merger.heartbeat(1, active=True, now=now) == []
        assert merger.completed(now=now + 5) == []
    done = merger.add(1, _partial(0, "b"), now=1000).completed
    assert _summary(done) == [(0, 2, True)]


def test_merger_does_not_wait_for_an_idle_partition() -> None:
    merger = WindowMerger(2, SIZE, timeout=30)
    merger.add(0, _partial(0, "a"), now=0)
    assert merger.completed(now=1) == []
    done = merger.heartbeat(1, active=False, now=2)
    assert _summary(done) == [(0, 1, True)]
    done = merger.add(0, _partial(60, "b"), now=3).completed  # 1 is still idle
    assert _summary(done) == [(60, 1, True)]
    merger.heartbeat(1, active=True, now=4)  # it has posts again
    merger.add(0, _partial(120, "c"), now=5)
    assert merger.completed(now=6) == []


def test_a_partial_makes_an_idle_partition_waited_for_until_it_says_otherwise() -> None:
    merger = WindowMerger(2, SIZE, timeout=30)
    merger.heartbeat(1, active=False, now=0)
    merger.add(1, _partial(0, "a"), now=1)
    done = merger.add(0, _partial(0, "b"), now=1).completed
    assert _summary(done) == [(0, 2, True)]
    assert merger.add(0, _partial(60, "c"), now=1).completed == []  # waits on 1
    assert merger.completed(now=2) == []
    assert _summary(merger.heartbeat(1, active=False, now=3)) == [(60, 1, True)]


def test_merger_gives_up_on_a_silent_partition_and_marks_the_window_incomplete() -> (
    None
):
    merger = WindowMerger(2, SIZE, timeout=30)
    merger.heartbeat(1, active=True, now=90)
    merger.add(0, _partial(0, "a"), now=100)
    assert merger.completed(now=119.9) == []
    done = merger.completed(now=120)  # partition 1 silent since 90
    assert _summary(done) == [(0, 1, False)]


def test_merger_never_heard_from_a_partition_waits_from_the_first_partial() -> None:
    merger = WindowMerger(2, SIZE, timeout=30)
    merger.add(0, _partial(0, "a"), now=100)
    assert merger.completed(now=129.9) == []
    merger.add(0, _partial(60, "b"), now=125)
    done = merger.completed(now=130)
    assert _summary(done) == [(0, 1, False)]
    assert merger.completed(now=154.9) == []  # window 60's clock started at 125
    assert [w.start for w, _ in merger.completed(now=155)] == [60]


def test_a_late_partial_amends_a_window_emitted_without_it() -> None:
    merger = WindowMerger(2, SIZE, timeout=30)
    merger.add(0, _partial(0, "a"), now=0)
    merger.add(0, _partial(60, "b"), now=0)
    assert [w.start for w, _ in merger.completed(now=40)] == [0, 60]
    assert set(merger.amendable) == {0, 60}
    outcome = merger.add(1, _partial(0, "c", "d"), now=41)
    assert outcome.status == AMENDED and outcome.accepted
    assert outcome.completed == []
    assert outcome.amended is not None
    assert (outcome.amended.start, outcome.amended.posts) == (0, 3)
    assert outcome.amended.topics["t"].negative == 3
    assert set(merger.amendable) == {60}  # window 0 now has every partition
    assert merger.add(1, _partial(0, "c", "d"), now=42).status == DUPLICATE
    assert merger.add(0, _partial(60, "b"), now=42).status == DUPLICATE


def test_an_idle_partition_that_wakes_up_amends_the_windows_it_missed() -> None:
    merger = WindowMerger(2, SIZE, timeout=30)
    merger.heartbeat(1, active=False, now=0)
    ((window, complete),) = merger.add(0, _partial(0, "a"), now=0).completed
    assert complete and 0 in merger.amendable
    outcome = merger.add(1, _partial(0, "b"), now=1)
    assert outcome.status == AMENDED and outcome.amended.posts == 2  # type: ignore[union-attr]


def test_amendment_horizon_is_bounded_and_older_partials_are_dropped() -> None:
    merger = WindowMerger(2, SIZE, timeout=30, amend_windows=3)
    merger.heartbeat(1, active=False, now=0)
    for index in range(10):
        merger.add(0, _partial(index * SIZE, f"p{index}"), now=0)
    assert merger.emitted_through == 9 * SIZE
    assert sorted(merger.amendable) == [7 * SIZE, 8 * SIZE, 9 * SIZE]
    assert merger.add(1, _partial(6 * SIZE, "x"), now=1) == MergeOutcome(DROPPED)
    assert merger.add(1, _partial(7 * SIZE, "x"), now=1).status == AMENDED
    # partition 0 re-sending a window it sent long ago is a duplicate, not a loss
    assert merger.add(0, _partial(2 * SIZE, "p2"), now=1).status == DUPLICATE


def test_gap_windows_are_amendable_for_a_partition_that_had_not_closed_them() -> None:
    merger = WindowMerger(2, SIZE, timeout=30)
    merger.heartbeat(1, active=False, now=0)  # idle: not waited for
    merger.add(0, _partial(0, "a"), now=0)
    merger.add(0, _partial(180, "b"), now=0)
    assert {60, 120} <= set(merger.amendable)
    outcome = merger.add(1, _partial(120, "c"), now=1)
    assert outcome.status == AMENDED
    assert outcome.amended is not None and outcome.amended.posts == 1


def test_gap_windows_every_partition_closed_are_final() -> None:
    # A partition sends only windows with posts: one it closed without
    # sending was empty there, so nothing is left to amend.
    merger = WindowMerger(1, SIZE, timeout=30)
    merger.add(0, _partial(0, "a"), now=0)
    merger.add(0, _partial(180, "b"), now=0)
    assert merger.amendable == {}
    assert merger.add(0, _partial(120, "late"), now=1).status == DUPLICATE


def test_restore_emitted_rebuilds_an_amendable_window() -> None:
    merger = WindowMerger(3, SIZE, timeout=30)
    merger.emitted_through = 60
    merger.restore_emitted(60, [0, 2], [_partial(60, "a"), _partial(60, "b")])
    assert merger.add(2, _partial(60, "b"), now=0).status == DUPLICATE
    outcome = merger.add(1, _partial(60, "c"), now=0)
    assert outcome.amended is not None and outcome.amended.posts == 3
    assert merger.amendable == {}


def test_merger_absorb_never_completes() -> None:
    merger = WindowMerger(2, SIZE, timeout=0)
    assert merger.absorb(0, _partial(0, "a"), now=0).accepted
    assert merger.absorb(1, _partial(0, "b"), now=0).accepted
    assert not merger.absorb(1, _partial(0, "b"), now=0).accepted
    assert merger.emitted_through is None and list(merger.pending) == [0]
    ((window, complete),) = merger.completed(now=0)
    assert complete and window.posts == 2


def test_merger_refuses_a_partial_of_another_size() -> None:
    merger = WindowMerger(1, SIZE, timeout=30)
    with pytest.raises(ValueError, match="expected 60s"):
        merger.add(0, WindowAggregate(0, 2 * SIZE), now=0)


@settings(max_examples=80)
@given(st.data())
def test_merger_sums_interleaved_partials_into_consecutive_windows(
    data: st.DataObject,
) -> None:
    partitions = data.draw(st.integers(1, 4), label="partitions")
    last = data.draw(st.integers(0, 6), label="last window")
    queues: list[list[WindowAggregate]] = []
    total = 0
    for partition in range(partitions):
        first = data.draw(st.integers(0, last), label=f"first window of {partition}")
        queue = []
        for index in range(first, last + 1):
            ids = [
                f"{partition}-{index}-{n}" for n in range(data.draw(st.integers(0, 3)))
            ]
            total += len(ids)
            queue.append(_partial(index * SIZE, *ids))
        queues.append(queue)
    merger = WindowMerger(partitions, SIZE, timeout=1e9)
    output: list[tuple[WindowAggregate, bool]] = []
    while any(queues):
        partition = data.draw(
            st.sampled_from([p for p, queue in enumerate(queues) if queue])
        )
        partial = queues[partition].pop(0)
        outcome = merger.add(partition, partial, now=0)
        assert outcome.status == TAKEN
        output += outcome.completed
        if data.draw(st.booleans(), label="re-sent"):
            assert merger.add(partition, partial, now=0) == MergeOutcome(DUPLICATE)
    # every partition reported through the last window: nothing is left
    windows = [w for w, _ in output]
    assert all(complete for _, complete in output)
    assert [w.start for w in windows] == list(
        range(windows[0].start, (last + 1) * SIZE, SIZE)
    )
    assert sum(w.posts for w in windows) == total
    assert merger.pending == {}


def test_merger_bounds_a_gap_to_max_gap_windows_and_counts_the_rest() -> None:
    size = 300
    assert WindowMerger(1, size, timeout=30).max_gap_windows == 2016  # a week
    merger = WindowMerger(1, size, timeout=30)
    first = WindowAggregate(0, size)
    first.add(_post("a", 1))
    assert len(merger.add(0, first, now=0).completed) == 1
    later = WindowAggregate(YEAR // size * size, size)
    later.add(_post("b", YEAR + 1))
    done = merger.add(0, later, now=0).completed
    assert len(done) == 2016 + 1
    starts = [w.start for w, _ in done]
    assert starts == list(range(later.start - 2016 * size, later.start + size, size))
    assert [w.posts for w, _ in done[:-1]] == [0] * 2016 and done[-1][0].posts == 1
    assert all(complete for _, complete in done)
    assert merger.skipped_gap_windows == YEAR // size - 1 - 2016
    # the next gap within the bound is filled whole, and nothing more skipped
    third = WindowAggregate(later.start + 3 * size, size)
    assert len(merger.add(0, third, now=0).completed) == 3
    assert merger.skipped_gap_windows == YEAR // size - 1 - 2016


def test_merger_with_no_gap_allowance_emits_only_windows_with_partials() -> None:
    merger = WindowMerger(1, SIZE, timeout=30, max_gap_windows=0)
    merger.add(0, _partial(0, "a"), now=0)
    done = merger.add(0, _partial(600, "b"), now=0).completed
    assert _summary(done) == [(600, 1, True)]
    assert merger.skipped_gap_windows == 9


def test_merger_refuses_a_negative_gap_allowance() -> None:
    with pytest.raises(ValueError, match="max_gap_windows"):
        WindowMerger(1, SIZE, timeout=30, max_gap_windows=-1)


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_ledgers_and_merger_count_every_post_that_is_not_late(
    data: st.DataObject,
) -> None:
    """Four partitions, random batches, flushes and heartbeats, one merger.

    What the merger emits (with the amendments of windows an idle partition
    came back to) sums to counting every post that is not late, directly; the
    windows it emits are consecutive, each once. A partition that said it was
    idle while records of its were still to come (a race the stage narrows,
    not closes) may send a window older than the first one emitted: that
    partial is dropped, and only then.
    """
    partitions = 4
    drawn = data.draw(
        st.lists(
            st.tuples(st.floats(0, 3 * 3600), st.integers(0, partitions - 1)),
            min_size=1,
            max_size=40,
        ),
        label="posts",
    )
    queues: list[list[tuple[int, PostFacts]]] = [[] for _ in range(partitions)]
    for number, (moment, partition) in enumerate(drawn):
        queue = queues[partition]
        queue.append((len(queue), _post(f"p{number}", moment)))
    ledgers = [PartitionLedger(p, SIZE, GRACE) for p in range(partitions)]
    merger = WindowMerger(partitions, SIZE, timeout=math.inf, amend_windows=10**6)
    active = [False] * partitions
    final: dict[int, WindowAggregate] = {}
    order: list[int] = []
    dropped: Counter[int] = Counter()
    idle_with_backlog = False

    def take(done: list[tuple[WindowAggregate, bool]]) -> None:
        for window, complete in done:
            assert complete  # nobody is given up on: the timeout is infinite
            order.append(window.start)
            final[window.start] = window

    def send(partition: int, closed: list[WindowAggregate]) -> None:
        for partial in closed:
            outcome = merger.add(partition, partial, now=0)
            if outcome.status == DROPPED:
                assert idle_with_backlog and partial.start < order[0]
                dropped[partial.start] += partial.posts
                event("a partial dropped")
                continue
            assert outcome.status in (TAKEN, AMENDED)
            if outcome.amended is not None:
                final[partial.start] = outcome.amended
                event("a window amended")
            take(outcome.completed)

    def heartbeat(partition: int) -> None:
        nonlocal idle_with_backlog
        active[partition] = bool(ledgers[partition].windows.open)
        if not active[partition] and queues[partition]:
            # not caught up: it says so, unless it has not heard of them yet
            if data.draw(st.booleans(), label="idle with a backlog"):
                idle_with_backlog = True
            else:
                active[partition] = True
        take(merger.heartbeat(partition, active[partition], now=0))

    # The reference: per partition, the latest window closed and the open ones.
    expected: Counter[int] = Counter()
    closed_ref: list[int | None] = [None] * partitions
    open_ref: list[set[int]] = [set() for _ in range(partitions)]
    latest: list[float | None] = [None] * partitions
    counted = 0
    while any(queues):
        partition = data.draw(st.integers(0, partitions - 1), label="partition")
        if not queues[partition] or data.draw(st.booleans(), label="tick"):
            if data.draw(st.booleans(), label="flush"):
                send(partition, ledgers[partition].flush().closed)
                if open_ref[partition]:
                    closed_ref[partition] = max(open_ref[partition])
                    open_ref[partition] = set()
            heartbeat(partition)
            continue
        size = data.draw(st.integers(1, 5), label="batch size")
        batch, queues[partition] = queues[partition][:size], queues[partition][size:]
        for _, post in batch:
            start = window_start(post.published, SIZE)
            through = closed_ref[partition]
            if through is not None and start <= through:
                continue  # late
            expected[start] += 1
            open_ref[partition].add(start)
            previous = latest[partition]
            latest[partition] = max(post.published, previous or post.published)
        if latest[partition] is not None:
            last = window_start(latest[partition] - GRACE, SIZE) - SIZE
            through = closed_ref[partition]
            if through is None or last > through:
                closed_ref[partition] = last
                open_ref[partition] = {s for s in open_ref[partition] if s > last}
        outcome = ledgers[partition].apply(batch)
        counted += outcome.counted
        send(partition, outcome.closed)
        if not active[partition]:
            heartbeat(partition)
    for partition in range(partitions):  # every partition goes idle at the end
        send(partition, ledgers[partition].flush().closed)
        heartbeat(partition)

    assert counted == sum(expected.values())
    assert merger.pending == {}
    assert order == list(range(order[0], order[-1] + SIZE, SIZE))
    merged = Counter({start: w.posts for start, w in final.items()})
    assert +(merged + dropped) == expected
    assert merger.skipped_gap_windows == 0


def test_window_of_a_local_time_is_its_utc_window() -> None:
    moment = datetime(2026, 11, 20, 13, 7, 30, tzinfo=timezone(timedelta(hours=8)))
    start = window_start(moment.timestamp(), 300)
    assert to_datetime(start) == datetime(2026, 11, 20, 5, 5, tzinfo=timezone.utc)
    assert to_datetime(start).tzinfo is timezone.utc
