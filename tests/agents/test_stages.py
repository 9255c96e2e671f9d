"""The stage functions the agents call, wired to in-memory topics and sinks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.metrics import MonitorMetrics
from monitor.pipelines.batches import Pipeline
from monitor.pipelines.count import CountStage
from monitor.pipelines.index import index_decoded
from monitor.pipelines.score import handle_posts, score_events
from monitor.records import DeadLetter, ScoredPost, encode_scored_post
from monitor.settings import Settings
from monitor.stages.score import PostScorer
from tests.fakes import FakeDocumentSink, FakeStateLog, FakeTopic, fake_event

POST = {
    "id": "p1",
    "text": "空调有股怪味",
    "published_at": "2026-11-20T13:00:00+08:00",
    "source": "weibo",
}


class ExplodingModel:
    """Wraps the real model; fails on any batch that holds the text 炸了."""

    def __init__(self, model) -> None:  # noqa: ANN001
        self.model = model

    def score_many(self, texts, keyword_limit):  # noqa: ANN001, ANN201
        if "炸了" in texts:
            raise RuntimeError("model file corrupt")
        return self.model.score_many(texts, keyword_limit)


class ExplodingScorer(PostScorer):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.model = ExplodingModel(self.model)


def make_pipeline(sink: FakeDocumentSink | None = None) -> Pipeline:
    topics = {
        name: FakeTopic(name)
        for name in (
            "posts",
            "scored_posts",
            "window_partials",
            "bursts",
            "tickets",
            "dead_letters",
        )
    }
    return Pipeline(
        settings=Settings(
            kafka_url="kafka://x:1",
            es_url="http://x:2",
            es_retry_initial_seconds=0.001,
            es_retry_max_seconds=0.001,
            publish_scored_posts=True,  # off by default; these tests check it
        ),
        topics=type("T", (), topics)(),  # attribute access like monitor.topics.Topics
        metrics=MonitorMetrics.create(CollectorRegistry()),
        scorer=ExplodingScorer([], LabelThresholds()),
        posts_sink=sink or FakeDocumentSink(),
    )


def counter(pipeline: Pipeline) -> CountStage:
    """A count stage on an in-memory state log, owning partition 0."""
    stage = CountStage(pipeline, FakeStateLog())
    stage.assign([0])
    return stage


async def chained(
    pipeline: Pipeline, events: list, stage: CountStage | None = None
) -> CountStage:  # noqa: ANN001
    """Run the hot path (score, count, index, publish) on a batch of post events."""
    stage = stage or counter(pipeline)
    await handle_posts(pipeline, stage, events)
    return stage


def value(metric, **labels: str) -> float:  # noqa: ANN001
    return (metric.labels(**labels) if labels else metric)._value.get()


def dead_letters(pipeline: Pipeline) -> list[DeadLetter]:
    return [DeadLetter.loads(v) for _, v in pipeline.topics.dead_letters.sent]


async def test_a_scoring_crash_dead_letters_that_post_and_the_batch_goes_on() -> None:
    pipeline = make_pipeline()
    events = [
        fake_event(json.dumps(POST).encode(), offset=0),
        fake_event(
            json.dumps({**POST, "id": "boom", "text": "炸了"}).encode(), offset=1
        ),
        fake_event(json.dumps({**POST, "id": "p3"}).encode(), offset=2),
    ]
    await chained(pipeline, events)
    assert [k for k, _ in pipeline.topics.scored_posts.sent] == [b"p1", b"p3"]
    assert [doc_id for _, doc_id in pipeline.posts_sink.documents] == ["p1", "p3"]
    (letter,) = dead_letters(pipeline)
    assert letter.post_id == "boom" and letter.source == "weibo" and letter.offset == 1
    assert letter.reason == "scoring failed: RuntimeError: model file corrupt"
    assert value(pipeline.metrics.posts_consumed, source="weibo") == 3
    assert value(pipeline.metrics.posts_scored, source="weibo") == 2
    assert (
        value(pipeline.metrics.posts_dead_lettered, stage="score", source="weibo") == 1
    )


async def test_invalid_post_is_dead_lettered_with_its_reason_counted_unknown() -> None:
    pipeline = make_pipeline()
    stage = await chained(pipeline, [fake_event(b'{"id": "x"}', offset=7)])
    (letter,) = dead_letters(pipeline)
    assert letter.reason == "text is required" and letter.post_id is None
    assert letter.payload == '{"id": "x"}' and letter.offset == 7
    assert value(pipeline.metrics.posts_consumed, source="unknown") == 1
    assert pipeline.topics.scored_posts.sent == []
    # Read past all the same: the partition is not held back by it.
    assert stage.counter.partitions[0].position == 8


def post_events(ids: list[str]) -> list:  # noqa: ANN001
    return [
        fake_event(json.dumps({**POST, "id": i}).encode(), offset=n)
        for n, i in enumerate(ids)
    ]


async def test_index_waits_out_an_outage_then_writes_and_dead_letters_refusals() -> (
    None
):
    sink = FakeDocumentSink(unavailable_times=2, refuse={"bad"})
    pipeline = make_pipeline(sink)
    await chained(pipeline, post_events(["a", "bad", "c"]))
    assert sink.attempts == 3
    assert {doc_id for _, doc_id in sink.documents} == {"a", "c"}
    assert {index for index, _ in sink.documents} == {"monitor-posts-2026.11.20"}
    (letter,) = dead_letters(pipeline)
    assert letter.stage == "index" and letter.post_id == "bad"
    assert letter.reason == "Elasticsearch rejected the document: refused by fake"
    # The letter carries the post as it came in: it can be published again.
    assert json.loads(letter.payload)["id"] == "bad" and letter.topic == "posts"
    assert value(pipeline.metrics.sink_retries, sink="elasticsearch") == 2
    assert value(pipeline.metrics.posts_indexed, source="weibo") == 2


async def test_posts_are_counted_before_they_are_indexed() -> None:
    # The window reports (and the alerts they feed) do not wait for
    # Elasticsearch: an outage delays the documents, not the counts.
    sink = FakeDocumentSink(unavailable_times=1)
    pipeline = make_pipeline(sink)
    stage = counter(pipeline)
    seen_by_sink: list[int] = []
    write = sink.write

    async def watching(docs):  # noqa: ANN001, ANN202
        ledger = await stage.ledger(0)
        seen_by_sink.append(sum(w.posts for w in ledger.windows.open.values()))
        return await write(docs)

    sink.write = watching  # type: ignore[method-assign]
    await chained(pipeline, post_events(["a", "b"]), stage)
    assert seen_by_sink == [2, 2]
    assert {doc_id for _, doc_id in sink.documents} == {"a", "b"}


async def test_a_later_copy_of_a_post_id_is_neither_counted_nor_indexed() -> None:
    sink = FakeDocumentSink()
    pipeline = make_pipeline(sink)
    stage = await chained(pipeline, post_events(["a"]))
    copy = fake_event(
        json.dumps({**POST, "id": "a", "text": "改过"}).encode(), offset=1
    )
    await chained(pipeline, [copy], stage)
    ledger = await stage.ledger(0)
    assert sum(w.posts for w in ledger.windows.open.values()) == 1
    assert sink.documents[("monitor-posts-2026.11.20", "a")]["text"] == POST["text"]
    assert value(pipeline.metrics.posts_duplicate) == 1


async def test_without_publishing_scored_posts_the_topic_stays_empty() -> None:
    sink = FakeDocumentSink()
    pipeline = make_pipeline(sink)
    pipeline.settings = pipeline.settings.model_copy(
        update={"publish_scored_posts": False}
    )
    await chained(pipeline, post_events(["a", "b"]))
    assert pipeline.topics.scored_posts.sent == []
    assert len(sink.documents) == 2


@pytest.mark.parametrize("offset", ["+00:00", "+08:00"])
async def test_daily_index_follows_the_configured_offset(offset: str) -> None:
    sink = FakeDocumentSink()
    pipeline = make_pipeline(sink)
    pipeline.settings = pipeline.settings.model_copy(
        update={"index_utc_offset": offset}
    )
    late = {**POST, "id": "late", "published_at": "2026-11-20T23:30:00+00:00"}
    await chained(pipeline, [fake_event(json.dumps(late).encode())])
    expected = "2026.11.20" if offset == "+00:00" else "2026.11.21"
    assert list(sink.documents) == [(f"monitor-posts-{expected}", "late")]


def test_fakes_module_is_not_used_by_integration_tests() -> None:
    integration = Path(__file__).resolve().parents[1] / "integration"
    for path in integration.glob("*.py"):
        assert "tests.fakes" not in path.read_text(encoding="utf-8"), path


class OneBatchStream:
    """Yields one batch, like Faust's take_events; records whether it moved on."""

    def __init__(self, events: list) -> None:  # noqa: ANN001
        self.events = events
        self.acked = False
        # what consume_batches reads of a Faust stream beside its batches
        self.channel = SimpleNamespace(topics=("posts",))
        self.app = SimpleNamespace(consumer_generation_id=1)

    async def take_events(self, size: int, within: float):  # noqa: ANN201
        yield self.events
        self.acked = True  # Faust acks the batch when the generator resumes


async def test_a_refused_delivery_makes_the_whole_batch_run_again(monkeypatch) -> None:  # noqa: ANN001
    import monitor.pipelines.batches as pipelines

    monkeypatch.setattr(pipelines, "BATCH_RETRY_INITIAL_SECONDS", 0.0)
    pipeline = make_pipeline()
    pipeline.topics.scored_posts.fail_next = 1
    stream = OneBatchStream(
        [fake_event(json.dumps({**POST, "id": i}).encode()) for i in ("a", "b")]
    )
    calls = []

    stage = counter(pipeline)

    async def handle(pipe, events):  # noqa: ANN001, ANN202
        calls.append(len(events))
        assert not stream.acked
        await handle_posts(pipe, stage, events)

    await pipelines.consume_batches(
        stream,
        pipeline,
        name="score_index_count",
        batch_size=10,
        batch_seconds=0.1,
        handle=handle,
    )
    assert calls == [2, 2]
    assert stream.acked
    # At least once: "b" went out on the failed attempt too; ids make it idempotent.
    assert {k for k, _ in pipeline.topics.scored_posts.sent} == {b"a", b"b"}
    assert value(pipeline.metrics.batch_retries, stage="score_index_count") == 1
    # Counted and indexed once each, though the batch ran twice.
    ledger = await stage.ledger(0)
    assert sum(w.posts for w in ledger.windows.open.values()) == 2
    assert value(pipeline.metrics.posts_duplicate) == 0
    assert value(pipeline.metrics.posts_replayed) == 2
    assert len(pipeline.posts_sink.documents) == 2


async def test_dead_letter_keeps_a_bounded_payload_and_says_so() -> None:
    from monitor.records import MAX_DEAD_LETTER_PAYLOAD_BYTES

    pipeline = make_pipeline()
    huge = (
        b'{"id": "h", "text": 1, "pad": "'
        + b"x" * (MAX_DEAD_LETTER_PAYLOAD_BYTES + 10)
        + b'"}'
    )
    await score_events(pipeline, [fake_event(huge)])
    (letter,) = dead_letters(pipeline)
    assert (
        letter.payload_truncated
        and len(letter.payload) == MAX_DEAD_LETTER_PAYLOAD_BYTES
    )
    assert letter.reason == "text must be a string, got int"


async def test_a_post_that_cannot_be_mapped_is_dead_lettered_alone() -> None:
    sink = FakeDocumentSink()
    pipeline = make_pipeline(sink)
    items = [item for _, item in await score_events(pipeline, post_events(["a", "b"]))]
    assert all(items)
    bad = ScoredPost.loads(items[1].value)
    # 0001-01-01 at +08:00 is before year 1 in UTC: no daily index name exists.
    bad.published_at = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    await index_decoded(
        pipeline,
        [
            (fake_event(items[0].value, offset=0), items[0].data),
            (
                fake_event(encode_scored_post(bad), offset=1),
                json.loads(encode_scored_post(bad)),
            ),
        ],
    )
    assert [doc_id for _, doc_id in sink.documents] == ["a"]
    (letter,) = dead_letters(pipeline)
    assert letter.post_id == "b" and letter.reason.startswith(
        "cannot map to a document:"
    )


async def test_score_stage_counts_cache_hits_and_misses() -> None:
    pipeline = make_pipeline()
    pipeline.scorer.cache.size = 100
    storm = [json.dumps({**POST, "id": f"r{n}"}).encode() for n in range(5)]
    await score_events(pipeline, [fake_event(v, offset=n) for n, v in enumerate(storm)])
    await score_events(pipeline, [fake_event(storm[0], offset=5)])
    assert value(pipeline.metrics.score_cache, result="miss") == 1
    assert value(pipeline.metrics.score_cache, result="hit") == 5


def test_a_partition_is_caught_up_only_once_read_to_its_highwater() -> None:
    from monitor.pipelines.count import CountStage

    highwater: dict[int, int | None] = {0: None, 1: 10}
    stage = CountStage(make_pipeline(), state=None, highwater=highwater.get)  # type: ignore[arg-type]
    assert not stage.caught_up(0)  # not fetched yet: unknown, so not idle
    stage.assign([1])
    stage.counter.advance(1, 7, now=0.0)
    assert not stage.caught_up(1)  # records 7..9 still on their way
    stage.counter.advance(1, 10, now=0.0)
    assert stage.caught_up(1)
    stage.forget([1])
    assert 1 in stage.counter.revoked and 1 not in stage.counter.partitions
    stage.assign([1])
    assert 1 not in stage.counter.revoked and 1 in stage.counter.partitions
