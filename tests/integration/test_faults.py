"""Outages, shutdowns and copies on real servers: Elasticsearch down for two
minutes under load, SIGTERM while it is down, and a post id seen twice.
Nothing is lost, nothing becomes a dead letter, nothing hangs, nothing is
counted twice."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from monitor.analysis.windows import window_start
from tests.integration.conftest import Stack
from tests.support import make_posts, wait_until

pytestmark = pytest.mark.integration

TOPIC = "星河全部"


CST = timezone(timedelta(hours=8))


def watched_posts(
    count: int, *, seed: int, prefix: str, start: datetime | None = None
) -> list[dict[str, Any]]:
    """Posts that all match the watched topic, so its counts must add up to all."""
    posts = make_posts(count, seed=seed, prefix=prefix, start=start)
    for post in posts:
        post["text"] = "星河广场" + post["text"]
    return posts


def counting_stack(stack: Stack, tmp_path: Path) -> Stack:
    topics = tmp_path / "topics.yaml"
    topics.write_text(
        f"topics:\n  {TOPIC}:\n    keywords: [星河广场]\n", encoding="utf-8"
    )
    stack.env.update(
        MONITOR_TOPICS_FILE=str(topics),
        MONITOR_IDLE_CLOSE_SECONDS="3",
        MONITOR_WINDOW_GRACE_SECONDS="0",
    )
    return stack


def counted(stack: Stack) -> dict[int, int]:
    """Window start -> posts counted for the watched topic, from Elasticsearch."""
    pattern = f"{stack.index_prefix}-counts-*"
    stack.es.indices.refresh(index=pattern, allow_no_indices=True)
    hits = stack.es.search(
        index=pattern,
        size=10_000,
        query={"term": {"series": f"topic:{TOPIC}"}},
        allow_no_indices=True,
    )["hits"]["hits"]
    return {
        _start(hit["_source"]["window_start"]): hit["_source"]["posts"]
        for hit in hits
        if hit["_source"]["posts"]
    }


def _start(moment: str) -> int:
    return window_start(datetime.fromisoformat(moment).timestamp(), 300)


def expected_counts(posts: list[dict[str, Any]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for post in posts:
        start = _start(post["published_at"])
        counts[start] = counts.get(start, 0) + 1
    return counts


def assert_every_post_indexed_and_counted(
    stack: Stack, posts: list[dict[str, Any]]
) -> None:
    """Wait for every post in Elasticsearch and the topic's window counts exact."""
    wait_until(
        lambda: stack.indexed_count() >= len(posts),
        timeout=180,
        what="every post indexed",
    )
    assert set(stack.indexed_docs()) == {post["id"] for post in posts}
    expected = expected_counts(posts)
    wait_until(
        lambda: counted(stack) == expected,
        timeout=120,
        what=f"window counts {expected}",
    )


def test_elasticsearch_down_two_minutes_under_load_loses_nothing(
    stack: Stack,
    noida,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    counting_stack(stack, tmp_path)
    posts = watched_posts(240, seed=21, prefix="o")
    worker = stack.worker().start()
    noida.stop_service("elasticsearch")
    down_at = time.monotonic()
    try:
        # Load for the whole outage: 2 posts/s for two minutes.
        stack.monitor("replay", str(stack.write_jsonl(posts)), "--rate", "2")
        wait_until(
            lambda: (
                worker.metric_sum("monitor_sink_retries_total", sink="elasticsearch")
                >= 2
            ),
            timeout=60,
            what="the index stage retrying",
        )
        assert worker.metric_sum("monitor_posts_indexed_total") == 0
        time.sleep(max(0.0, 120 - (time.monotonic() - down_at)))
        # Stuck on the outage, it says so: records wait, no progress.
        assert (
            worker.metric_sum(
                "monitor_stage_pending_records", stage="score_index_count"
            )
            > 0
        )
    finally:
        noida.start_service("elasticsearch")
    assert_every_post_indexed_and_counted(stack, posts)
    assert worker.metric_sum("monitor_posts_dead_lettered_total") == 0
    assert worker.metric_sum("monitor_batch_bisections_total") == 0
    assert worker.metric_sum("monitor_es_bulk_errors_total", kind="unavailable") >= 2


def test_sigterm_while_elasticsearch_is_down_exits_in_time_then_loses_nothing(
    stack: Stack,
    noida,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    counting_stack(stack, tmp_path)
    stack.env["MONITOR_SHUTDOWN_SECONDS"] = "8"
    stack.env["MONITOR_INSTANCE_ID"] = "worker-1"
    posts = watched_posts(120, seed=22, prefix="s")
    worker = stack.worker().start()
    noida.stop_service("elasticsearch")
    try:
        stack.monitor("replay", str(stack.write_jsonl(posts)))
        # Dead letters amid posts the backlog holds: their offsets must not
        # be committed ahead of the held posts (a commit past them would lose
        # the posts at the exit below).
        stack.publish_raw([b"not json"] * 8)
        wait_until(
            lambda: (
                worker.metric_sum("monitor_sink_retries_total", sink="elasticsearch")
                >= 1
            ),
            timeout=60,
            what="the index stage retrying",
        )
        assert worker.process is not None
        asked = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        try:
            code = worker.process.wait(timeout=8 + 7)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the worker still runs 15 s after SIGTERM:\n{worker.log_tail()}"
            ) from None
        took = time.monotonic() - asked
    finally:
        noida.start_service("elasticsearch")
    assert took <= 8 + 5, took
    assert code == 75, (code, worker.log_tail())  # abandoned, unacknowledged
    stack.worker().start()
    assert_every_post_indexed_and_counted(stack, posts)


def test_a_post_id_seen_again_with_another_time_is_indexed_and_counted_once(
    stack: Stack, tmp_path: Path
) -> None:
    counting_stack(stack, tmp_path)
    worker = stack.worker().start()
    first = {
        "id": "dup-1",
        "text": "星河广场的空调有股怪味",
        "published_at": "2026-11-20T09:01:00+08:00",
    }
    # The same id again, a day later and edited: a re-crawl, not a new post.
    again = {
        **first,
        "text": "星河广场 已修改",
        "published_at": "2026-11-21T10:00:00+08:00",
    }
    # In the next window: the first copy's window may have closed (idle)
    # by the time they come.
    others = watched_posts(
        5, seed=23, prefix="d", start=datetime(2026, 11, 20, 9, 5, tzinfo=CST)
    )
    stack.monitor("replay", str(stack.write_jsonl([first], "first.jsonl")))
    wait_until(lambda: stack.indexed_count() >= 1, timeout=60, what="the first copy")
    stack.monitor("replay", str(stack.write_jsonl([again, *others], "again.jsonl")))
    wait_until(
        lambda: stack.indexed_count() >= 1 + len(others),
        timeout=60,
        what="the posts after the copy",
    )
    wait_until(
        lambda: worker.metric_sum("monitor_posts_duplicate_total") >= 1,
        timeout=30,
        what="the copy counted as a duplicate",
    )
    docs = stack.indexed_docs()
    assert len(docs) == stack.indexed_count() == 1 + len(others)
    assert docs["dup-1"]["original_text"] == first["text"]
    expected = expected_counts([first, *others])
    wait_until(
        lambda: counted(stack) == expected,
        timeout=60,
        what=f"window counts {expected}",
    )
