"""The count and merge stages after a write that fails once: nothing the
failed write carried is lost, and nothing is sent twice."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import orjson
import pytest

import monitor.pipelines.batches as pipelines
from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.tickets.model import AlertRule
from monitor.analysis.topics import WatchedTopic
from monitor.analysis.windows import PostFacts, WindowAggregate
from monitor.pipelines.batches import Pipeline
from monitor.pipelines.count import CountStage
from monitor.pipelines.detect import MergeStage
from monitor.pipelines.score import handle_posts, score_events
from monitor.records import (
    DeadLetter,
    PartitionReport,
)
from monitor.stages.score import PostScorer
from tests.agents.test_stages import POST, OneBatchStream, make_pipeline
from tests.fakes import FakeDocumentSink, FakeStateLog, FakeTopic, fake_event

START = int(datetime(2026, 11, 20, 5, 0, tzinfo=timezone.utc).timestamp())


def pipeline_with_all_topics() -> Pipeline:
    pipeline = make_pipeline()
    # One bucket per window: the faults here are about one window's writes.
    pipeline.settings = pipeline.settings.model_copy(update={"bucket_seconds": 300})
    for name in ("window_partials", "triggers"):
        setattr(pipeline.topics, name, FakeTopic(name))
    pipeline.windows_sink = FakeDocumentSink()
    return pipeline


async def scored(pipeline: Pipeline, posts: list[tuple[str, str]], first: int) -> list:
    """Score ``(id, published_at)`` posts at offsets from ``first``: what count gets."""
    events = [
        fake_event(
            json.dumps({**POST, "id": i, "published_at": at}).encode(),
            partition=0,
            offset=first + n,
        )
        for n, (i, at) in enumerate(posts)
    ]
    return [
        (event, item[1] if item else None)
        for event, item in await score_events(pipeline, events)
    ]


def partials(pipeline: Pipeline) -> list[dict]:
    sent = pipeline.topics.window_partials.sent
    reports = [PartitionReport.decode(value) for _, value in sent]
    return [r.window.to_dict() for r in reports if r.kind == "partial"]


async def one_window_then_its_closer(
    pipeline: Pipeline, state: FakeStateLog, posts: int
) -> tuple[CountStage, list]:
    """Count ``posts`` posts in the 13:00 window; return the batch that closes it."""
    stage = CountStage(pipeline, state)
    stage.assign([0])
    early = [(f"e{n}", "2026-11-20T13:01:00+08:00") for n in range(posts)]
    await stage.count(pipeline, await scored(pipeline, early, 0))
    closing = await scored(pipeline, [("late", "2026-11-20T13:10:00+08:00")], posts)
    return stage, closing


async def test_a_failed_count_state_write_loses_no_post_of_the_closed_window() -> None:
    pipeline = pipeline_with_all_topics()
    state = FakeStateLog()
    stage, closing = await one_window_then_its_closer(pipeline, state, 5)

    state.fail_next = 1  # the write that logs the close is refused
    with pytest.raises(RuntimeError, match="state log write refused"):
        await stage.count(pipeline, closing)
    await stage.count(pipeline, closing)  # the batch, handled again

    closed = [p for p in partials(pipeline) if p["start"] == START]
    assert closed and all(p["posts"] == 5 for p in closed)
    # After a restart the ledger holds exactly what was counted.
    restarted = CountStage(pipeline, state)
    ledger = await restarted.ledger(0)
    assert ledger.applied_offset == 5
    assert sum(w.posts for w in ledger.windows.open.values()) == 1
    assert ledger.windows.closed_through == START


async def test_a_failed_partial_send_is_sent_again_on_the_retry() -> None:
    pipeline = pipeline_with_all_topics()
    stage, closing = await one_window_then_its_closer(pipeline, FakeStateLog(), 3)
    pipeline.topics.window_partials.fail_next = 1
    with pytest.raises(RuntimeError):
        await stage.count(pipeline, closing)
    await stage.count(pipeline, closing)
    assert [p["posts"] for p in partials(pipeline) if p["start"] == START] == [3]


async def test_the_same_id_with_another_time_is_counted_once() -> None:
    pipeline = pipeline_with_all_topics()
    stage = CountStage(pipeline, FakeStateLog())
    stage.assign([0])
    first = await scored(pipeline, [("same", "2026-11-20T13:01:00+08:00")], 0)
    again = await scored(pipeline, [("same", "2026-11-20T13:07:00+08:00")], 1)
    assert await stage.count(pipeline, first) == set()
    assert await stage.count(pipeline, again) == {(0, 1)}
    ledger = await stage.ledger(0)
    assert sum(w.posts for w in ledger.windows.open.values()) == 1


def negative_partial(posts: int) -> WindowAggregate:
    window = WindowAggregate(START, 300)
    for n in range(posts):
        window.add(
            PostFacts(
                post_id=f"n{n}",
                published=START + 10.0,
                negative=True,
                topics=("空调异味",),
                keywords=("异味",),
            )
        )
    return window


def merge_stage(pipeline: Pipeline, state: FakeStateLog) -> MergeStage:
    rule = AlertRule("负面声量", "空调异味", "negative_volume", 2.0)
    return MergeStage(pipeline, state, lambda: [rule], lambda: ["空调异味"])


def partial_event(window: WindowAggregate) -> object:
    body = {"partition": 0, "window": window.to_dict()}
    return fake_event(orjson.dumps(body), topic="window-partials")


def one_partition(pipeline: Pipeline) -> None:
    pipeline.settings = pipeline.settings.model_copy(update={"topic_partitions": 1})


class FailingOnce(FakeDocumentSink):
    async def write(self, docs):  # noqa: ANN001, ANN201
        if self.attempts == 0:
            self.attempts += 1
            raise RuntimeError("window write failed")
        return await super().write(docs)


async def test_a_failed_trigger_send_is_sent_exactly_once_on_the_retry() -> None:
    pipeline = pipeline_with_all_topics()
    one_partition(pipeline)
    state = FakeStateLog()
    stage = merge_stage(pipeline, state)
    event = partial_event(negative_partial(5))
    pipeline.topics.triggers.fail_next = 1
    with pytest.raises(RuntimeError):
        await stage.handle(pipeline, [event])
    await stage.handle(pipeline, [event])
    (trigger,) = [orjson.loads(v) for _, v in pipeline.topics.triggers.sent]
    assert trigger["trigger"]["topic"] == "空调异味"
    counts = pipeline.windows_sink.documents.values()
    assert any(d.get("key") == "空调异味" and d.get("negative") == 5 for d in counts)
    # The merge state says the window went out: a restart sends nothing more.
    restarted = merge_stage(pipeline, state)
    await restarted.tick()
    await restarted.handle(pipeline, [event])
    assert len(pipeline.topics.triggers.sent) == 1


async def test_an_early_trigger_whose_send_fails_is_sent_once_on_the_retry() -> None:
    """A snapshot of an open bucket crosses the rule; the send fails once."""
    pipeline = pipeline_with_all_topics()
    one_partition(pipeline)
    state = FakeStateLog()
    stage = merge_stage(pipeline, state)
    snapshot = PartitionReport.snapshot(0, negative_partial(3), offset=7)
    event = fake_event(snapshot.encode(), topic="window-partials")
    pipeline.topics.triggers.fail_next = 1
    with pytest.raises(RuntimeError):
        await stage.handle(pipeline, [event])
    await stage.handle(pipeline, [event])
    (trigger,) = [orjson.loads(v) for _, v in pipeline.topics.triggers.sent]
    assert trigger["trigger"]["observed_value"] == 3
    assert trigger["trigger"]["signal_id"] == f"负面声量@空调异味@{START + 300}"
    # The latch is logged: the bucket's close (its partial) and a restart
    # with the snapshot again send nothing more.
    restarted = merge_stage(pipeline, state)
    await restarted.handle(pipeline, [event, partial_event(negative_partial(3))])
    await restarted.tick()
    assert len(pipeline.topics.triggers.sent) == 1


async def test_a_failed_window_write_writes_it_and_sends_its_trigger_once() -> None:
    pipeline = pipeline_with_all_topics()
    one_partition(pipeline)
    pipeline.windows_sink = FailingOnce()
    stage = merge_stage(pipeline, FakeStateLog())
    event = partial_event(negative_partial(4))
    with pytest.raises(RuntimeError, match="window write failed"):
        await stage.handle(pipeline, [event])
    await stage.handle(pipeline, [event])
    assert len(pipeline.topics.triggers.sent) == 1
    assert pipeline.windows_sink.documents


def post_event(post_id: str, at: str, offset: int) -> object:
    post = {**POST, "id": post_id, "published_at": at, "text": "空调有股怪味，太差了"}
    return fake_event(json.dumps(post).encode(), partition=0, offset=offset)


async def test_a_poison_record_is_dead_lettered_and_later_windows_alert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipelines, "BATCH_RETRY_INITIAL_SECONDS", 0.0)
    pipeline = pipeline_with_all_topics()
    one_partition(pipeline)
    pipeline.scorer = PostScorer(
        [WatchedTopic("空调异味", ("空调", "异味"))], LabelThresholds()
    )
    count = CountStage(pipeline, FakeStateLog())
    count.assign([0])

    async def handle(pipe: Pipeline, events: list) -> None:  # noqa: ANN001
        if any(json.loads(e.value)["id"] == "poison" for e in events):
            raise ValueError("a bug this record triggers")
        await handle_posts(pipe, count, events)

    ids = ["n0", "n1", "poison", "n2", "n3"]
    batch = [post_event(i, "2026-11-20T13:01:00+08:00", n) for n, i in enumerate(ids)]
    batch.append(post_event("closer", "2026-11-20T13:10:00+08:00", len(ids)))
    stream = OneBatchStream(batch)
    await pipelines.consume_batches(
        stream,
        pipeline,
        name="score_index_count",
        batch_size=10,
        batch_seconds=0.1,
        handle=handle,
    )
    assert stream.acked  # the offset moves past the poison record
    (letter,) = [DeadLetter.loads(v) for _, v in pipeline.topics.dead_letters.sent]
    assert letter.post_id == "poison" and letter.offset == 2
    assert "a bug this record triggers" in letter.reason
    # The window it sat in still closes, counts the four others and alerts.
    merge = merge_stage(pipeline, FakeStateLog())
    await merge.handle(
        pipeline,
        [
            fake_event(value, topic="window-partials", offset=n)
            for n, (_, value) in enumerate(pipeline.topics.window_partials.sent)
        ],
    )
    (trigger,) = [orjson.loads(v) for _, v in pipeline.topics.triggers.sent]
    assert trigger["trigger"]["topic"] == "空调异味"
    assert trigger["trigger"]["observed_value"] == 4


async def test_the_meta_entry_is_written_after_the_values_it_covers() -> None:
    # Without idempotence a producer may deliver a later record after an
    # earlier one failed: the entry a restore trusts must wait for the rest.
    pipeline = pipeline_with_all_topics()
    state = FakeStateLog()
    stage, closing = await one_window_then_its_closer(pipeline, state, 3)
    state.calls.clear()
    await stage.count(pipeline, closing)
    steps = state.calls
    meta = [n for n, keys in enumerate(steps) if "0:meta" in keys]
    assert meta and all(keys == ["0:meta"] for keys in (steps[n] for n in meta))
    (at,) = meta
    values = [k for keys in steps[:at] for k in keys]
    assert any(":d:" in k or ":closed:" in k for k in values)
    deletes = [k for keys in steps[at + 1 :] for k in keys]
    assert all(state.partitions[0].get(k) is None for k in deletes)


async def test_partials_resent_on_restore_are_sent_again_when_that_send_fails() -> None:
    pipeline = pipeline_with_all_topics()
    state = FakeStateLog()
    stage, closing = await one_window_then_its_closer(pipeline, state, 4)
    await stage.count(pipeline, closing)  # the close is logged, then sent
    pipeline.topics.window_partials.sent.clear()
    restarted = CountStage(pipeline, state)
    restarted.assign([0])
    pipeline.topics.window_partials.fail_next = 1
    await restarted.tick()  # restore; sending the last close again is refused
    await restarted.tick()  # restored again, and sent
    assert [p["posts"] for p in partials(pipeline) if p["start"] == START] == [4]


async def test_a_batch_retried_after_a_failed_write_says_its_windows_are_open() -> None:
    pipeline = pipeline_with_all_topics()
    state = FakeStateLog()
    stage = CountStage(pipeline, state)
    stage.assign([0])
    await stage.tick()  # restored, idle
    pipeline.topics.window_partials.sent.clear()
    batch = await scored(pipeline, [("a", "2026-11-20T13:01:00+08:00")], 0)
    state.fail_next = 1
    with pytest.raises(RuntimeError):
        await stage.count(pipeline, batch)
    await stage.count(pipeline, batch)  # the retry
    sent = pipeline.topics.window_partials.sent
    reports = [PartitionReport.decode(value) for _, value in sent]
    assert [(r.window is None, r.active) for r in reports] == [(True, True)]
