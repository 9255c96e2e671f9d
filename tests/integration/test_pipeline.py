"""The walking skeleton end to end: replay -> score -> index, dead letters,
idempotent replays, restarts and an Elasticsearch outage, on real servers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from snownlp import SnowNLP

from monitor.analysis.text import normalise_text
from tests.integration.conftest import Stack
from tests.support import make_posts, wait_until

pytestmark = pytest.mark.integration

MALFORMED: list[tuple[bytes, str]] = [
    (b"not json", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"\xff\xfe{", "not valid JSON"),
    (b"[1, 2, 3]", "must be a JSON object"),
    (b'"just a string"', "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b"{}", "id is required"),
    (
        b'{"text": "no id", "published_at": "2026-11-20T10:00:00+08:00"}',
        "id is required",
    ),
    (
        b'{"id": "", "text": "x", "published_at": "2026-11-20T10:00:00+08:00"}',
        "id is required",
    ),
    (
        b'{"id": null, "text": "x", "published_at": "2026-11-20T10:00:00+08:00"}',
        "id is required",
    ),
    (
        json.dumps(
            {"id": "x" * 600, "text": "x", "published_at": "2026-11-20T10:00:00+08:00"}
        ).encode(),
        "longer than 512",
    ),
    (b'{"id": "m1", "published_at": "2026-11-20T10:00:00+08:00"}', "text is required"),
    (
        b'{"id": "m2", "text": 42, "published_at": "2026-11-20T10:00:00+08:00"}',
        "text must be a string",
    ),
    (b'{"id": "m3", "text": "x"}', "published_at is required"),
    (
        b'{"id": "m4", "text": "x", "published_at": "2026-11-20T10:00:00"}',
        "no UTC offset",
    ),
    (b'{"id": "m5", "text": "x", "published_at": "yesterday"}', "not ISO 8601"),
    (
        b'{"id": "m6", "text": "x", "published_at": "2026-11-20T10:00:00Z",'
        b' "metrics": [1]}',
        "metrics must be an object",
    ),
    (
        b'{"id": "m7", "text": "x", "published_at": "2026-11-20T10:00:00Z",'
        b' "metrics": {"likes": -1}}',
        "metrics.likes",
    ),
    (
        b'{"id": "m8", "text": "x", "published_at": "2026-11-20T10:00:00Z",'
        b' "metrics": {"reposts": true}}',
        "metrics.reposts",
    ),
    (
        b'{"id": "m9", "text": "x", "published_at": "2026-11-20T10:00:00Z",'
        b' "author": ["a"]}',
        "author must be a string",
    ),
]


def expected_probability(text: str) -> float:
    normalised = normalise_text(text)
    return SnowNLP(normalised).sentiments if normalised else 0.5


def test_replayed_feed_is_indexed_once_scored_by_snownlp_and_bad_records_dead_lettered(
    stack: Stack,
) -> None:
    posts = make_posts(1000, seed=11)
    feed = stack.write_jsonl(posts)
    worker = stack.worker().start()

    replay = stack.monitor("replay", str(feed))
    assert "sent 1000 posts" in replay.stdout and "rejected 0" in replay.stdout
    stack.publish_raw([payload for payload, _ in MALFORMED])

    wait_until(
        lambda: stack.indexed_count() >= 1000, timeout=180, what="1000 indexed posts"
    )
    # ES shows documents before the worker has counted the bulk response.
    wait_until(
        lambda: worker.metric_sum("monitor_posts_indexed_total") >= 1000,
        timeout=60,
        what="the indexed counter",
    )
    wait_until(
        lambda: (
            worker.metric_sum("monitor_posts_dead_lettered_total") >= len(MALFORMED)
        ),
        timeout=60,
        what="dead letters counted",
    )
    docs = stack.indexed_docs()
    assert set(docs) == {post["id"] for post in posts}
    for post in posts:
        doc = docs[post["id"]]
        # noida-db re-formats floats in _source and can lose the last ulp of a
        # 17-digit double (real Elasticsearch returns _source verbatim); the
        # records themselves carry snownlp's value exactly (unit-tested).
        assert abs(doc["sentiment"] - expected_probability(post["text"])) < 1e-12, post[
            "id"
        ]
        assert doc["label"] in ("negative", "neutral", "positive")
        assert doc["text"] == normalise_text(post["text"])
        assert doc["source"] == post["source"] and doc["author"] == post["author"]
        assert doc["meta"] == {"customer_tier": post["customer_tier"]}
        assert doc["published_at"] == post["published_at"]

    letters = json.loads(
        stack.monitor("dead-letters", "--json", "--limit", "100").stdout
    )
    assert len(letters) == len(MALFORMED)
    reasons = sorted(letter["reason"] for letter in letters)
    for _, expected in MALFORMED:
        assert any(expected in reason for reason in reasons), (expected, reasons)
    assert all(letter["stage"] == "score" for letter in letters)
    assert any(letter["payload_encoding"] == "base64" for letter in letters)

    assert worker.metric_sum("monitor_posts_consumed_total") == 1000 + len(MALFORMED)
    assert worker.metric_sum("monitor_posts_consumed_total", source="unknown") == len(
        MALFORMED
    )
    assert worker.metric_sum("monitor_posts_scored_total") == 1000
    assert worker.metric_sum("monitor_posts_indexed_total") == 1000
    assert worker.metric_sum("monitor_posts_dead_lettered_total", stage="score") == len(
        MALFORMED
    )
    assert worker.metric_sum("monitor_stage_seconds_count", stage="score") > 0
    assert worker.metric_sum("monitor_event_lag_seconds_count", stage="index") == 1000

    # The same file again: every post is a copy of one already counted and
    # indexed (same ids): dropped, the first versions stay.
    stack.monitor("replay", str(feed))
    wait_until(
        lambda: worker.metric_sum("monitor_posts_duplicate_total") >= 1000,
        timeout=180,
        what="the second replay recognised as copies",
    )
    assert worker.metric_sum("monitor_posts_indexed_total") == 1000
    assert stack.indexed_count() == 1000


def interrupt_mid_stream(
    stack: Stack, posts: list[dict], *, rate: float, after: int, sig: int
) -> int:
    """Replay ``posts`` at ``rate`` while a worker runs; once ``after`` posts are
    indexed, stop the worker with ``sig``. Returns how many were indexed then."""
    feed = stack.write_jsonl(posts)
    worker = stack.worker().start()
    replay = subprocess.Popen(
        [sys.executable, "-m", "monitor", "replay", str(feed), "--rate", str(rate)],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: stack.indexed_count() >= after,
            timeout=120,
            what="some posts indexed",
        )
        code = worker.stop(sig)
        indexed = stack.indexed_count()
        if sig == signal.SIGTERM:
            assert code == 0, "a worker told to stop exits cleanly"
    finally:
        out, err = replay.communicate(timeout=120)
    assert replay.returncode == 0, err
    assert f"sent {len(posts)} posts" in out
    assert indexed < len(posts), "the worker finished before it was interrupted"
    return indexed


def test_worker_restarted_mid_stream_resumes_without_loss(stack: Stack) -> None:
    posts = make_posts(600, seed=12, prefix="r")
    interrupt_mid_stream(stack, posts, rate=60, after=100, sig=signal.SIGTERM)

    second = stack.worker().start()
    wait_until(
        lambda: stack.indexed_count() >= len(posts),
        timeout=180,
        what="all posts indexed after the restart",
    )
    assert set(stack.indexed_docs()) == {post["id"] for post in posts}
    # It resumed from the committed offsets instead of starting over.
    assert second.metric_sum("monitor_posts_consumed_total") < len(posts)


def test_worker_killed_hard_mid_stream_loses_nothing(stack: Stack) -> None:
    posts = make_posts(400, seed=15, prefix="k")
    # Static membership: the restarted worker takes the killed one's place
    # instead of waiting for the broker to expire it.
    stack.env["MONITOR_INSTANCE_ID"] = "worker-1"
    # No goodbye: nothing is flushed or committed on exit.
    interrupt_mid_stream(stack, posts, rate=50, after=50, sig=signal.SIGKILL)

    stack.worker().start()
    wait_until(
        lambda: stack.indexed_count() >= len(posts),
        timeout=180,
        what="all posts indexed after the hard kill",
    )
    assert set(stack.indexed_docs()) == {post["id"] for post in posts}


def test_document_elasticsearch_rejects_is_dead_lettered_with_its_reason(
    stack: Stack,
) -> None:
    # An index created by someone else for that day, where 'author' is a number:
    # Elasticsearch refuses our document, and says why.
    stack.es.indices.create(
        index=f"{stack.index_prefix}-posts-2026.11.20",
        mappings={"properties": {"author": {"type": "long"}}},
    )
    posts = make_posts(3, seed=14, prefix="x")
    worker = stack.worker().start()
    stack.monitor("replay", str(stack.write_jsonl(posts)))
    wait_until(
        lambda: worker.metric_sum("monitor_posts_dead_lettered_total") >= 3,
        timeout=120,
        what="rejected documents dead-lettered",
    )
    letters = json.loads(stack.monitor("dead-letters", "--json").stdout)
    assert {letter["post_id"] for letter in letters} == {post["id"] for post in posts}
    for letter in letters:
        assert letter["stage"] == "index"
        assert "Elasticsearch rejected the document" in letter["reason"]
        assert "author" in letter["reason"]
        # The post as it came in, ready to be published again.
        assert json.loads(letter["payload"])["id"] == letter["post_id"]
    assert worker.metric_sum("monitor_es_bulk_errors_total", kind="rejected") == 3
