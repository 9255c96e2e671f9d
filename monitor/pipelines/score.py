"""The hot path: posts -> score -> count -> index, in one consumer of ``posts``.

Each batch of ``posts`` is scored, counted into its partition's windows and
bulk-indexed by one agent (``score_index_count``), the stages chained as
Flink and Kafka Streams chain operators: a post is fetched, decoded and
handled as a Faust event once, not once per stage. The batch is
acknowledged, so its offsets committed, only when every effect is durable:
the count state logged and the window reports sent, Elasticsearch's bulk
answer in, and (with ``MONITOR_PUBLISH_SCORED_POSTS``, the default) the
scored posts on ``scored-posts`` for anyone who reads them. Every effect is
idempotent on replay: counts by partition offset and post id, documents by
id, scored posts by post id.

Counting runs before indexing, so the window reports (and the alerts they
feed) go out before the bulk write; an Elasticsearch outage holds the batch
(retried with backoff, never dead-lettered) and with it the next one.
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
from monitor.pipelines.batches import Pipeline, register_batch_agent
from monitor.pipelines.count import CountStage
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


def register(
    app: faust.App, pipeline: Pipeline, count: CountStage
) -> faust.types.AgentT:
    """Add the ``score_index_count`` agent (the hot path) to ``app``."""
    settings = pipeline.settings

    async def handle(pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
        await handle_posts(pipeline, count, events)

    return register_batch_agent(
        app,
        pipeline,
        topic=pipeline.topics.posts,
        name=AGENT,
        batch_size=settings.score_batch_size,
        batch_seconds=settings.score_batch_seconds,
        handle=handle,
    )


async def handle_posts(
    pipeline: Pipeline, count: CountStage, events: Sequence[faust.EventT]
) -> None:
    """Score, count, index and publish a batch of raw post events.

    Raises:
        Exception: Whatever an effect raised; the batch is then handled again
            (see :func:`~monitor.pipelines.batches.handle_batch`), which every
            effect tolerates.

    """
    scored = await score_events(pipeline, events)
    # Later copies of a post id are neither counted nor indexed: the first
    # version wins in the counts and in Elasticsearch alike.
    duplicates = await count.count(
        pipeline, [(event, item.data if item else None) for event, item in scored]
    )
    await index_decoded(
        pipeline,
        [
            (event, item.data)
            for event, item in scored
            if item is not None
            and (event.message.partition, event.message.offset) not in duplicates
        ],
    )
    if pipeline.settings.publish_scored_posts:
        await publish_scored(pipeline, [item for _, item in scored if item])
    count_scored(pipeline, [item.post for _, item in scored if item])


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
