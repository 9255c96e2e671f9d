"""Windowed counts and bursts end to end on real servers: the sample incident
is found within one window of its onset, nothing fires in its calm hours, and
a worker killed mid-replay restarts with the counts still exact."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.windows import window_start
from monitor.config.rules import load_rules
from monitor.local.embedded import free_port
from monitor.local.receivers import LocalReceivers
from monitor.records import parse_post
from monitor.stages.score import PostScorer
from tests.integration.conftest import Stack
from tests.support import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
RULES = ROOT / "examples" / "rules.yaml"
CST = timezone(timedelta(hours=8))
INCIDENT = "空调异味"
ONSET = datetime(2026, 11, 20, 13, 5, tzinfo=CST)


@pytest.fixture(scope="module")
def expected_counts() -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, window start) -> (posts, negative), computed without the pipeline."""
    rules = load_rules(RULES)
    scorer = PostScorer(list(rules.topics), LabelThresholds(0.3, 0.7))
    posts = [parse_post(line) for line in FEED.read_text("utf-8").splitlines()]
    counts: dict[tuple[str, int], list[int]] = {}
    for scored in scorer.score_many(posts):
        assert not isinstance(scored, Exception)
        start = window_start(scored.published_at.timestamp(), 300)
        for topic in scored.topics:
            entry = counts.setdefault((topic, start), [0, 0])
            entry[0] += 1
            entry[1] += scored.label == "negative"
    return {key: (posts, negative) for key, (posts, negative) in counts.items()}


@pytest.fixture
def receivers() -> Iterator[LocalReceivers]:
    """Local stand-ins for the channels the example rules notify."""
    with LocalReceivers() as running:
        yield running


def windows_stack(stack: Stack, receivers: LocalReceivers) -> Stack:
    stack.env.update(
        receivers.env(),
        MONITOR_RULES=str(RULES),
        MONITOR_IDLE_CLOSE_SECONDS="3",
    )
    return stack


def topic_counts(stack: Stack) -> dict[tuple[str, int], tuple[int, int]]:
    pattern = f"{stack.index_prefix}-counts-*"
    stack.es.indices.refresh(index=pattern, allow_no_indices=True)
    hits = stack.es.search(
        index=pattern,
        size=10_000,
        query={"term": {"kind": "topic"}},
        allow_no_indices=True,
    )["hits"]["hits"]
    return {
        (
            hit["_source"]["key"],
            int(datetime.fromisoformat(hit["_source"]["window_start"]).timestamp()),
        ): (hit["_source"]["posts"], hit["_source"]["negative"])
        for hit in hits
    }


def bursts(stack: Stack) -> list[dict]:
    index = f"{stack.index_prefix}-bursts"
    stack.es.indices.refresh(
        index=index, allow_no_indices=True, ignore_unavailable=True
    )
    if not stack.es.indices.exists(index=index):
        return []
    hits = stack.es.search(index=index, size=1000, query={"match_all": {}})
    return [hit["_source"] for hit in hits["hits"]["hits"]]


def nonzero(counts: dict) -> dict:
    return {key: value for key, value in counts.items() if value[0]}


def wait_for_counts(stack: Stack, expected: dict, timeout: float = 240) -> dict:
    last = max(start for _, start in expected)
    wait_until(
        lambda: any(start >= last for _, start in topic_counts(stack)),
        timeout=timeout,
        what="the last window of the feed counted",
    )
    return topic_counts(stack)


def test_sample_incident_is_counted_exactly_and_bursts_at_onset(
    stack: Stack, expected_counts: dict, receivers: LocalReceivers
) -> None:
    windows_stack(stack, receivers)
    worker = stack.worker().start()
    stack.monitor("replay", str(FEED))
    counted = wait_for_counts(stack, expected_counts)
    assert nonzero(counted) == expected_counts
    # Empty windows between posts are counted as zeros, not skipped.
    assert counted[
        (INCIDENT, int(datetime(2026, 11, 20, 9, 0, tzinfo=CST).timestamp()))
    ]

    found = bursts(stack)
    incident = [
        b for b in found if b["series"] in (f"topic:{INCIDENT}", f"negative:{INCIDENT}")
    ]
    assert incident, f"no burst on {INCIDENT}: {found}"
    starts = {datetime.fromisoformat(b["started_at"]) for b in incident}
    assert min(starts) <= ONSET + timedelta(minutes=5), starts
    assert min(starts) >= ONSET, "a burst before the incident started"
    calm = [
        b
        for b in found
        if b["kind"] in ("topic", "negative")
        and datetime.fromisoformat(b["started_at"]) < ONSET - timedelta(minutes=5)
    ]
    assert not calm, f"bursts in the calm hours: {calm}"
    assert worker.metric_sum("monitor_triggers_total", kind="negative_volume") >= 1
    assert worker.metric_sum("monitor_posts_late_total") == 0


def test_worker_killed_mid_replay_keeps_counts_exact(
    stack: Stack, expected_counts: dict, receivers: LocalReceivers
) -> None:
    windows_stack(stack, receivers)
    stack.env["MONITOR_INSTANCE_ID"] = f"{stack.name}-w"
    first = stack.worker().start()
    replay = subprocess.Popen(
        [sys.executable, "-m", "monitor", "replay", str(FEED), "--rate", "600"],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: first.metric_sum("monitor_window_partials_total") >= 40,
            timeout=120,
            what="some windows closed before the kill",
        )
        first.stop(signal.SIGKILL)
    finally:
        out, err = replay.communicate(timeout=120)
    assert replay.returncode == 0, err
    second = stack.worker().start()
    counted = wait_for_counts(stack, expected_counts)
    got = nonzero(counted)
    wrong = {
        key: (got.get(key), expected_counts.get(key))
        for key in set(got) | set(expected_counts)
        if got.get(key) != expected_counts.get(key)
    }
    assert not wrong, f"(topic, window): (counted, expected): {wrong}"
    # The restarted worker read again what the first had counted but not
    # committed: each was counted once.
    assert second.metric_sum("monitor_posts_replayed_total") > 0
    # Both partitions were alive throughout: no window was given up on.
    assert second.metric_sum("monitor_windows_incomplete_total") == 0
    assert second.metric_sum("monitor_window_partials_dropped_total") == 0


def test_two_workers_share_the_partitions_and_count_exactly(
    stack: Stack, expected_counts: dict, receivers: LocalReceivers
) -> None:
    """N workers on one machine: same app id, own instance id and web port."""
    windows_stack(stack, receivers)
    workers = [
        stack.worker(
            MONITOR_INSTANCE_ID=f"{stack.name}-w{number}",
            MONITOR_WEB_PORT=str(free_port()),
        ).start()
        for number in range(2)
    ]
    # Posts flow once the group has settled: one posts partition each.
    wait_until(
        lambda: all(
            w.metric_sum("monitor_assigned_partitions", topic=stack.posts_topic) == 1
            for w in workers
        ),
        timeout=120,
        what="each worker owning one posts partition",
    )
    stack.monitor("replay", str(FEED), "--rate", "600")
    counted = wait_for_counts(stack, expected_counts)
    assert nonzero(counted) == expected_counts
    scored = [w.metric_sum("monitor_posts_scored_total") for w in workers]
    assert sum(scored) >= len(FEED.read_text("utf-8").splitlines())
    assert all(scored), f"a worker scored nothing: {scored}"
    for worker in workers:
        assert worker.metric_sum("monitor_windows_incomplete_total") == 0
        assert worker.metric_sum("monitor_window_partials_dropped_total") == 0
