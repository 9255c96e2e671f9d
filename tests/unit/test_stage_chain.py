"""Count -> merge -> evaluate over a list of posts: no Faust app, no servers.

The same sample feed and rules as tests/integration/test_windows.py, and the
same expectations: exact counts per topic and window, zeros between posts, a
burst within one window of the incident's onset and none in its calm hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.windows import PostFacts, window_start
from monitor.config.rules import RuleSet, load_rules
from monitor.records import PartitionReport, ScoredPost, parse_post
from monitor.stages.chain import ChainResult, count_and_detect, partition_of
from monitor.stages.count import CountSettings, WindowCounter
from monitor.stages.detect import WindowDetector
from monitor.stages.score import PostScorer
from monitor.stages.state import decode_state, encode_state

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
RULES = ROOT / "examples" / "rules.yaml"
CST = timezone(timedelta(hours=8))
INCIDENT = "空调异味"
ONSET = datetime(2026, 11, 20, 13, 5, tzinfo=CST)
SETTINGS = CountSettings(
    bucket_seconds=60,
    grace_seconds=120,
    idle_close_seconds=3,
    window_wait_seconds=30,
    dedup_horizon_seconds=86_400,
)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(RULES)


@pytest.fixture(scope="module")
def scored(rules: RuleSet) -> list[ScoredPost]:
    scorer = PostScorer(list(rules.topics), LabelThresholds(0.3, 0.7))
    posts = [parse_post(line) for line in FEED.read_text("utf-8").splitlines()]
    out = []
    for post in scorer.score_many(posts):
        assert not isinstance(post, Exception)
        out.append(post)
    return out


@pytest.fixture(scope="module")
def expected_counts(scored: list[ScoredPost]) -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, window start) -> (posts, negative), counted by hand."""
    counts: dict[tuple[str, int], list[int]] = {}
    for post in scored:
        start = window_start(post.published_at.timestamp(), 300)
        for topic in post.topics:
            entry = counts.setdefault((topic, start), [0, 0])
            entry[0] += 1
            entry[1] += post.label == "negative"
    return {key: (posts, negative) for key, (posts, negative) in counts.items()}


def run(scored: list[ScoredPost], rules: RuleSet, **kwargs: int) -> ChainResult:
    return count_and_detect(
        scored,
        settings=SETTINGS,
        rules=rules.rules,
        topics=[topic.name for topic in rules.topics],
        window_seconds=300,
        **kwargs,
    )


def topic_counts(result: ChainResult) -> dict[tuple[str, int], tuple[int, int]]:
    return {
        (point.key, point.window_start): (point.posts, point.negative)
        for window in result.windows
        for point in window.points
        if point.kind == "topic"
    }


def nonzero(counts: dict) -> dict:
    return {key: value for key, value in counts.items() if value[0]}


@pytest.fixture(scope="module")
def three_partitions(scored: list[ScoredPost], rules: RuleSet) -> ChainResult:
    return run(scored, rules, partitions=3)


def test_the_chain_counts_every_topic_window_exactly(
    three_partitions: ChainResult, expected_counts: dict
) -> None:
    counted = topic_counts(three_partitions)
    assert nonzero(counted) == expected_counts
    # Empty windows between posts are counted as zeros, not skipped.
    nine = int(datetime(2026, 11, 20, 9, 0, tzinfo=CST).timestamp())
    assert counted[(INCIDENT, nine)] == (0, 0)
    assert three_partitions.late == 0
    assert all(window.complete for window in three_partitions.windows)
    assert not three_partitions.amended and not three_partitions.dropped
    starts = [window.window_start for window in three_partitions.windows]
    assert starts == sorted(set(starts))  # in order, each once
    assert all(b - a == 300 for a, b in zip(starts, starts[1:], strict=False))


def test_the_chain_finds_the_incident_at_its_onset_and_nothing_before(
    three_partitions: ChainResult,
) -> None:
    bursts = [b for window in three_partitions.windows for b in window.bursts]
    incident = [
        b for b in bursts if b.series in (f"topic:{INCIDENT}", f"negative:{INCIDENT}")
    ]
    assert incident, f"no burst on {INCIDENT}: {bursts}"
    starts = {datetime.fromtimestamp(b.started_at, tz=timezone.utc) for b in incident}
    assert ONSET <= min(starts) <= ONSET + timedelta(minutes=5), starts
    calm = [
        b
        for b in bursts
        if b.kind in ("topic", "negative")
        and datetime.fromtimestamp(b.started_at, tz=timezone.utc)
        < ONSET - timedelta(minutes=5)
    ]
    assert not calm, f"bursts in the calm hours: {calm}"
    triggers = [
        *(t for window in three_partitions.windows for t in window.triggers),
        *three_partitions.triggers,
    ]
    assert any(t.kind == "negative_volume" and t.topic == INCIDENT for t in triggers)


def test_partitions_and_batch_sizes_do_not_change_the_windows(
    scored: list[ScoredPost], rules: RuleSet, three_partitions: ChainResult
) -> None:
    one = run(scored, rules, partitions=1)
    assert topic_counts(one) == topic_counts(three_partitions)
    # The same rules fire on the same topics. (When within a window a rule
    # fires early depends on which snapshots show it: not compared.)
    assert fired(one) == fired(three_partitions)
    # Batches of 7: the same counts. (A first batch whose watermark is still
    # before its first window closes an empty marker window before it, so
    # compare from the first post on.)
    small = run(scored, rules, partitions=3, batch_size=7)
    assert not small.amended and not small.dropped
    first = min(start for _, start in nonzero(topic_counts(small)))
    assert {k: v for k, v in topic_counts(small).items() if k[1] >= first} == (
        topic_counts(three_partitions)
    )


def fired(result: ChainResult) -> set[str]:
    return {
        t.fingerprint
        for t in [*(t for w in result.windows for t in w.triggers), *result.triggers]
    }


def test_posts_are_spread_over_partitions_by_id() -> None:
    spread = {partition_of(f"weibo:{n}", 4) for n in range(200)}
    assert spread == {0, 1, 2, 3}
    assert partition_of("weibo:7", 4) == partition_of("weibo:7", 4)


def test_components_restored_from_their_logs_go_on_as_if_never_stopped(
    scored: list[ScoredPost], rules: RuleSet
) -> None:
    """Stop half-way, rebuild both stages from their logged state, go on."""
    names = [topic.name for topic in rules.topics]
    facts = [PostFacts.from_scored(post) for post in scored]

    def stored(logs: dict, writes: dict) -> None:
        for key, value in writes.items():
            if value is None:
                logs.pop(key, None)
            else:
                logs[key] = encode_state(value)  # as the state log stores it

    def read(logs: dict) -> list[tuple[str, object]]:
        return [(key, decode_state(key, raw)) for key, raw in logs.items()]

    def replay(stop_at: int | None) -> tuple[list, dict]:
        count_log: dict = {}
        detect_log: dict = {}
        windows: list = []
        signals: list = []
        counter = WindowCounter(SETTINGS)
        detector = WindowDetector(
            partitions=1, bucket_seconds=60, window_seconds=300, window_wait_seconds=30
        )
        reports = counter.restore(0, [], 0.0)
        detector.restore([], 0.0)
        for offset, post in enumerate(facts):
            if offset == stop_at:  # a restart: everything rebuilt from the logs
                counter = WindowCounter(SETTINGS)
                detector = WindowDetector(
                    partitions=1,
                    bucket_seconds=60,
                    window_seconds=300,
                    window_wait_seconds=30,
                )
                reports = counter.restore(0, read(count_log), 0.0)
                detector.restore(read(detect_log), 0.0)
                # The last close is sent again (it may not have gone out).
                assert [r.window for r in reports if r.window]
            result = counter.count(0, [(offset, post)], 0.0, caught_up=True)
            stored(count_log, result.writes)
            found = detector.handle(reports + result.reports, 0.0, rules.rules, names)
            reports = []
            windows += found.windows
            signals.extend(
                (t.signal_key, t.provisional, t.retracted) for t in found.all_triggers
            )
            stored(detect_log, found.writes)
        closed = counter.idle_close(0, float("inf"), caught_up=True)
        assert closed is not None
        found = detector.handle(
            [*closed.reports, PartitionReport.heartbeat(0, False)],
            0.0,
            rules.rules,
            names,
        )
        signals.extend(
            (t.signal_key, t.provisional, t.retracted) for t in found.all_triggers
        )
        return windows + found.windows, signals

    straight, straight_signals = replay(None)
    restarted, restarted_signals = replay(len(facts) // 2)
    # Every signal once, early or at the close, the same with a restart.
    assert restarted_signals == straight_signals
    assert len(set(straight_signals)) == len(straight_signals)
    assert any("@空调异味@" in key for key, _, _ in straight_signals)

    def summary(windows: list) -> list:
        return [
            (
                w.window_start,
                [(p.series, p.observed, p.anomalous) for p in w.points],
                [b.burst_id + b.phase for b in w.bursts],
                [t.fingerprint for t in w.triggers],
            )
            for w in windows
        ]

    assert summary(restarted) == summary(straight)
    assert any(w.bursts for w in straight)


def test_a_detector_window_counts_posts_of_no_watched_topic() -> None:
    """Buckets whose posts match no topic still make the window's totals."""
    counter = WindowCounter(SETTINGS)
    counter.restore(0, [], 0.0)
    detector = WindowDetector(
        partitions=1, bucket_seconds=60, window_seconds=300, window_wait_seconds=30
    )
    detector.restore([], 0.0)
    start = 1_800_000_000 - 1_800_000_000 % 300
    posts = [
        PostFacts(f"p{n}", start + 30 + 60 * n, False, (), ("新词",)) for n in range(5)
    ]
    posts.append(PostFacts("later", start + 900, False, (), ()))
    result = counter.count(0, list(enumerate(posts)), 0.0, caught_up=True)
    found = detector.handle(result.reports, 0.0, [], [])
    (window,) = [w for w in found.windows if w.window_start == start]
    assert window.posts == 5


def test_a_crash_amid_the_merge_writes_loses_no_partial() -> None:
    """Only some of a batch's state writes land; its reports come again.

    Partition 0 closed buckets 0-2 (logged, committed); then partition 1's
    partials of buckets 0-4 come: 0-2 complete, 3-4 wait for partition 0.
    The crash lets only the pending partials of 3-4 land: a restore that
    trusted them would think partition 1 had reported through bucket 4, and
    complete bucket 1 without its partial when the batch came again.
    """
    counter = WindowCounter(SETTINGS)
    start = 1_800_000_000 - 1_800_000_000 % 300

    def detector() -> WindowDetector:
        return WindowDetector(
            partitions=2, bucket_seconds=60, window_seconds=300, window_wait_seconds=30
        )

    def closed(partition: int, buckets: int) -> list[PartitionReport]:
        counter.restore(partition, [], 0.0)
        posts = [
            (n, PostFacts(f"{partition}-{n}", start + 20 * n, False, ("t",), ()))
            for n in range(3 * buckets)
        ]
        counted = counter.count(partition, posts, 0.0, caught_up=True)
        idle = counter.idle_close(partition, float("inf"), caught_up=True)
        assert idle is not None
        return [r for r in [*counted.reports, *idle.reports] if r.kind == "partial"]

    first = detector()
    first.restore([], 0.0)
    log = {
        k: v
        for k, v in first.handle(closed(0, 3), 0.0, [], ["t"]).writes.items()
        if v is not None
    }
    batch = closed(1, 5)
    writes = first.handle(batch, 0.0, [], ["t"]).writes
    log.update(
        {
            key: value
            for key, value in writes.items()
            if value is not None and key.startswith("0:pending:")
        }
    )
    assert any(key.startswith(f"0:pending:{start + 240}:1") for key in log)
    second = detector()
    second.restore([(k, decode_state(k, encode_state(v))) for k, v in log.items()], 0.0)
    again = second.handle(batch, 0.0, [], ["t"])
    again_later = second.handle(
        [PartitionReport.heartbeat(0, False), PartitionReport.heartbeat(1, False)],
        0.0,
        [],
        ["t"],
    )
    windows = [*again.windows, *again_later.windows]
    (window,) = [w for w in windows if w.window_start == start]
    assert window.posts == 9 + 15


def test_no_window_before_the_first_post_is_evaluated(
    scored: list[ScoredPost], rules: RuleSet
) -> None:
    """One post per batch: a partition's first close marks an empty bucket
    before its first post; the detectors must not learn it as history."""
    first = scored[:60]
    result = count_and_detect(
        first,
        settings=SETTINGS,
        rules=rules.rules,
        topics=[topic.name for topic in rules.topics],
        batch_size=1,
        window_seconds=300,
    )
    start = window_start(min(p.published_at.timestamp() for p in first), 300)
    assert result.windows
    assert min(w.window_start for w in result.windows) == start
    assert not [t for t in result.triggers if t.kind == "burst"]
    assert not [t for w in result.windows for t in w.triggers if t.kind == "burst"]
