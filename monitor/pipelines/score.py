"""The hot path: posts -> score -> count -> index, in one consumer of ``posts``.

Each batch of ``posts`` is scored, counted into its partition's windows and
bulk-indexed by one consumer (``score_index_count``), the stages chained as
Flink and Kafka Streams chain operators: a post is fetched and decoded once,
not once per stage. That consumer is aiokafka's, read a batch at a time
(:mod:`monitor.pipelines.consumer`), not a Faust agent's stream.

Counting comes first, and with ``MONITOR_INDEX_BACKLOG_RECORDS`` set
(experimental, off by default) the window reports it sends (the alerts they
feed) do not wait for Elasticsearch: the bulk write and, with
``MONITOR_PUBLISH_SCORED_POSTS`` (off by default), the copy on ``scored-posts`` go to a
bounded backlog (:mod:`monitor.pipelines.backlog`,
``MONITOR_INDEX_BACKLOG_RECORDS``) written behind the stream. A slow or
unavailable Elasticsearch therefore delays indexing, and alerts only once
the backlog is full. A record's offset is committed only when every effect
is durable: the count state logged and the window reports sent, the bulk
answer in, the scored post on its topic. Every effect is idempotent on
replay: counts by partition offset and post id, documents by id, scored
posts by post id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from datetime import datetime, timezone
from typing import NamedTuple

import faust
import orjson

from monitor.errors import InvalidRecordError
from monitor.pipelines.backlog import Backlog
from monitor.pipelines.batches import Pipeline
from monitor.pipelines.consumer import BatchConsumer
from monitor.pipelines.count import CountStage
from monitor.pipelines.index import STAGE as INDEX_STAGE
from monitor.pipelines.index import index_decoded
from monitor.records import (
    MAX_MESSAGE_BYTES,
    Post,
    ScoredPost,
    ScoredPostData,
    encode_scored_post,
    parse_post,
    utc_now,
)

log = logging.getLogger(__name__)

STAGE = "score"
#: The agent's name (metrics, logs): the chained stages of the hot path.
AGENT = "score_index_count"


def register(app: faust.App, pipeline: Pipeline, count: CountStage) -> BatchConsumer:
    """Add the hot path (``score_index_count``) to ``app``: its consumer of ``posts``.

    The consumer starts and stops with the app (a Faust service); the count
    stage takes and drops ``posts`` partitions as it is assigned them, and
    reads their high watermarks from it.
    """
    settings, metrics = pipeline.settings, pipeline.metrics
    topic = settings.topic_posts
    backlog = Backlog(
        pipeline,
        name=INDEX_STAGE,
        limit=settings.index_backlog_records,
        limit_bytes=settings.index_backlog_bytes,
    )

    async def handle(pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
        await handle_posts(pipeline, count, events, backlog)

    def assigned(partitions: Sequence[int]) -> None:
        count.assign(partitions)
        metrics.assigned_partitions.labels(topic=topic).set(len(partitions))

    async def revoked(partitions: Sequence[int]) -> None:
        metrics.assigned_partitions.labels(topic=topic).set(0)
        async with count.lock:  # a tick in progress finishes first
            count.forget(partitions)

    consumer = BatchConsumer(
        app,
        pipeline,
        topic=topic,
        name=AGENT,
        handle=handle,
        backlog=backlog,
        assigned=assigned,
        revoked=revoked,
    )
    count.highwater = consumer.highwater

    @app.service
    class HotPath(faust.Service):
        async def on_start(self) -> None:
            await consumer.start()

        async def on_stop(self) -> None:
            await consumer.stop()

    return consumer


async def handle_posts(
    pipeline: Pipeline,
    count: CountStage,
    events: Sequence[faust.EventT],
    backlog: Backlog | None = None,
) -> None:
    """Score and count a batch of raw post events, then index and publish it.

    Indexing and publishing are queued on ``backlog`` (written behind the
    stream, the records held until they are done); without one they are
    done before this returns.

    Raises:
        Exception: Whatever scoring or counting raised; the batch is then
            handled again (see :func:`~monitor.pipelines.batches.handle_batch`),
            which every effect tolerates.

    """
    scored = await score_events(pipeline, events)
    # Later copies of a post id are neither counted nor indexed: the first
    # version wins in the counts and in Elasticsearch alike.
    duplicates = await count.count(
        pipeline, [(event, item.data if item else None) for event, item in scored]
    )
    count_scored(pipeline, [item.post for _, item in scored if item])
    effects = TrailingEffects(scored, duplicates)
    if backlog is None:
        await effects(pipeline, effects.events)
    else:
        await backlog.put(effects.events, effects)


class TrailingEffects:
    """A batch's effects after counting: its bulk write and its scored posts.

    Called with the batch's events, or any part of them (a retry bisects),
    it indexes the posts of those events that were not duplicates and, with
    ``MONITOR_PUBLISH_SCORED_POSTS``, sends every scored one to
    ``scored-posts``. Both are idempotent: documents are created by id, the
    topic is keyed by post id.
    """

    def __init__(
        self,
        scored: Sequence[tuple[faust.EventT, ScoredItem | None]],
        duplicates: set[tuple[int, int]],
    ) -> None:
        """Keep the scored posts of ``scored`` (dead letters have none)."""
        # by identity: the events are kept alive here, and a test's fakes
        # may share offsets
        self.items = {id(event): item for event, item in scored if item is not None}
        #: the events with effects, in order
        self.events = [event for event, item in scored if item is not None]
        self.duplicates = duplicates

    async def __call__(
        self, pipeline: Pipeline, events: Sequence[faust.EventT]
    ) -> None:
        """Index and publish the scored posts of ``events``."""
        items = [(event, self.items[id(event)]) for event in events]
        await index_decoded(
            pipeline,
            [
                (event, item.data)
                for event, item in items
                if _where(event) not in self.duplicates
            ],
        )
        if pipeline.settings.publish_scored_posts:
            await publish_scored(pipeline, [item for _, item in items])


def _where(event: faust.EventT) -> tuple[int, int]:
    return event.message.partition, event.message.offset


class ScoredItem(NamedTuple):
    """One scored post in the three forms the chained steps use."""

    post: ScoredPost  #: the record (metrics)
    data: ScoredPostData  #: its wire form, as counting and indexing read it
    value: bytes  #: the encoded record, as ``scored-posts`` carries it


async def score_events(
    pipeline: Pipeline, events: Sequence[faust.EventT]
) -> list[tuple[faust.EventT, ScoredItem | None]]:
    """Score a batch of raw post events; each event is scored or dead-lettered.

    Validation runs on the event loop (it is cheap); scoring runs in a worker
    thread, so a large batch never starves the other agents or the consumer.
    A post dated more than ``max_future_seconds`` after the worker's clock is
    refused: counted, it would move its partition's watermark ahead and make
    every real-time post after it late.

    Returns:
        Every event, in order, with its scored post (the record, its wire
        form as the count and index steps read it, and the encoded record),
        or None for one that went to the dead letters.

    """
    metrics = pipeline.metrics
    started = time.perf_counter()
    out: list[tuple[faust.EventT, ScoredItem | None]] = []
    valid: list[tuple[int, Post]] = []
    consumed: Counter[str] = Counter()
    now = utc_now()
    max_future = pipeline.settings.max_future_seconds
    for event in events:
        out.append((event, None))
        try:
            post = parse_post(event.value, now=now, max_future_seconds=max_future)
        except InvalidRecordError as exc:
            metrics.posts_consumed.labels(source="unknown").inc()
            await _dead_letter(pipeline, event, exc.reason)
            continue
        consumed[post.source] += 1
        valid.append((len(out) - 1, post))
    for source, posts in consumed.items():
        metrics.posts_consumed.labels(source=pipeline.source_label(source)).inc(posts)
    cache = pipeline.scorer.cache
    hits, misses = cache.hits, cache.misses
    results = await asyncio.to_thread(
        pipeline.scorer.score_many, [post for _, post in valid]
    )
    metrics.score_cache.labels(result="hit").inc(cache.hits - hits)
    metrics.score_cache.labels(result="miss").inc(cache.misses - misses)
    for (at, post), result in zip(valid, results, strict=True):
        event = out[at][0]
        if isinstance(result, Exception):
            log.error("scoring post %s failed", post.id, exc_info=result)
            await _dead_letter(
                pipeline,
                event,
                f"scoring failed: {type(result).__name__}: {result}",
                post,
            )
            continue
        result.received_at = record_time(event)
        value = encode_scored_post(result)
        if len(value) > MAX_MESSAGE_BYTES:
            # parse_post's bounds keep posts well under it; this keeps a miss
            # from stalling the batch on a refused send.
            await _dead_letter(
                pipeline,
                event,
                f"the scored post is {len(value):,} bytes, over the "
                f"{MAX_MESSAGE_BYTES:,}-byte message limit",
                post,
            )
            continue
        out[at] = (event, ScoredItem(result, orjson.loads(value), value))
    if events:
        per_event = (time.perf_counter() - started) / len(events)
        metrics.stage_seconds.labels(stage=STAGE).observe(per_event)
    return out


async def publish_scored(pipeline: Pipeline, items: Sequence[ScoredItem]) -> None:
    """Send scored posts to ``scored-posts`` (keyed by post id); wait for the broker.

    Raises:
        Exception: A send the broker refused; the batch is handled again.

    """
    topic = pipeline.topics.scored_posts
    deliveries: list[Awaitable[object]] = []
    for item in items:
        deliveries.append(
            await topic.send(key=item.post.post_id.encode("utf-8"), value=item.value)
        )
    await asyncio.gather(*deliveries)


def record_time(event: faust.EventT) -> datetime | None:
    """Return when the event's record reached Kafka (UTC), if the broker said."""
    timestamp = getattr(event.message, "timestamp", None)
    if not isinstance(timestamp, int | float) or timestamp <= 0:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def count_scored(pipeline: Pipeline, scored: Sequence[ScoredPost]) -> None:
    """Count scored posts per source and observe their event-time lag."""
    metrics = pipeline.metrics
    per_source = Counter(post.source for post in scored)
    for source, number in per_source.items():
        metrics.posts_scored.labels(source=pipeline.source_label(source)).inc(number)
    lags = metrics.event_lag_seconds.labels(stage=STAGE)
    lag = None
    for post in scored:
        lag = (post.scored_at - post.published_at).total_seconds()
        lags.observe(max(lag, 0.0))
    if lag is not None:
        metrics.event_time_lag.labels(stage=STAGE).set(lag)


async def _dead_letter(
    pipeline: Pipeline, event: faust.EventT, reason: str, post: Post | None = None
) -> None:
    await pipeline.dead_letter_event(
        STAGE,
        event,
        reason,
        source=post.source if post else "unknown",
        post_id=post.id if post else None,
    )
