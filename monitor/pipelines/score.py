"""The score stage: posts -> scored-posts (bad input -> dead-letters)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from datetime import datetime, timezone

import faust

from monitor.errors import InvalidRecordError
from monitor.pipelines.batches import Pipeline, is_transient, register_batch_agent
from monitor.records import (
    MAX_MESSAGE_BYTES,
    Post,
    ScoredPost,
    encode_scored_post,
    parse_post,
    utc_now,
)

log = logging.getLogger(__name__)

STAGE = "score"


def register(app: faust.App, pipeline: Pipeline) -> faust.types.AgentT:
    """Add the ``score_posts`` agent to ``app``."""
    settings = pipeline.settings
    return register_batch_agent(
        app,
        pipeline,
        topic=pipeline.topics.posts,
        name="score_posts",
        batch_size=settings.score_batch_size,
        batch_seconds=settings.score_batch_seconds,
        handle=score_events,
    )


async def score_events(pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
    """Score a batch of raw post events; each event succeeds or is dead-lettered.

    Validation runs on the event loop (it is cheap); scoring runs in a worker
    thread, so a large batch never starves the other agents or the consumer.
    A post dated more than ``max_future_seconds`` after the worker's clock is
    refused: counted, it would move its partition's watermark ahead and make
    every real-time post after it late.
    """
    metrics = pipeline.metrics
    started = time.perf_counter()
    valid: list[tuple[faust.EventT, Post]] = []
    consumed: Counter[str] = Counter()
    now = utc_now()
    max_future = pipeline.settings.max_future_seconds
    for event in events:
        try:
            post = parse_post(event.value, now=now, max_future_seconds=max_future)
        except InvalidRecordError as exc:
            metrics.posts_consumed.labels(source="unknown").inc()
            await _dead_letter(pipeline, event, exc.reason)
            continue
        consumed[post.source] += 1
        valid.append((event, post))
    for source, posts in consumed.items():
        metrics.posts_consumed.labels(source=pipeline.source_label(source)).inc(posts)
    cache = pipeline.scorer.cache
    hits, misses = cache.hits, cache.misses
    results = await asyncio.to_thread(
        pipeline.scorer.score_many, [post for _, post in valid]
    )
    metrics.score_cache.labels(result="hit").inc(cache.hits - hits)
    metrics.score_cache.labels(result="miss").inc(cache.misses - misses)
    deliveries: list[Awaitable[object]] = []
    sent: list[tuple[Post, ScoredPost]] = []
    for (event, post), result in zip(valid, results, strict=True):
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
        try:
            deliveries.append(await send_scored(pipeline, result))
        except Exception as exc:  # noqa: BLE001 - one boundary per event, see STYLE 4
            if is_transient(exc):
                raise  # the broker is away: the batch waits, no post is set aside
            await _dead_letter(
                pipeline,
                event,
                f"cannot send the scored post: {type(exc).__name__}: {exc}",
                post,
            )
            continue
        sent.append((post, result))
    # The batch is done only when the broker has every scored post; if one
    # was refused this raises and the whole batch is handled again.
    await asyncio.gather(*deliveries)
    count_scored(pipeline, sent)
    if events:
        per_event = (time.perf_counter() - started) / len(events)
        metrics.stage_seconds.labels(stage=STAGE).observe(per_event)


def record_time(event: faust.EventT) -> datetime | None:
    """Return when the event's record reached Kafka (UTC), if the broker said."""
    timestamp = getattr(event.message, "timestamp", None)
    if not isinstance(timestamp, int | float) or timestamp <= 0:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


async def send_scored(pipeline: Pipeline, scored: ScoredPost) -> Awaitable[object]:
    """Send one scored post to the scored-posts topic; return the delivery future.

    Raises:
        InvalidRecordError: If the encoded post is over the producer's
            :data:`~monitor.records.MAX_MESSAGE_BYTES` (parse_post's bounds
            keep posts well under it; this keeps a miss from stalling the
            batch on a refused send).

    """
    value = encode_scored_post(scored)
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidRecordError(
            f"the scored post is {len(value):,} bytes, over the "
            f"{MAX_MESSAGE_BYTES:,}-byte message limit"
        )
    return await pipeline.topics.scored_posts.send(
        key=scored.post_id.encode("utf-8"), value=value
    )


def count_scored(pipeline: Pipeline, sent: Sequence[tuple[Post, ScoredPost]]) -> None:
    """Count scored posts per source and observe their event-time lag."""
    metrics = pipeline.metrics
    per_source = Counter(post.source for post, _ in sent)
    for source, scored in per_source.items():
        metrics.posts_scored.labels(source=pipeline.source_label(source)).inc(scored)
    lags = metrics.event_lag_seconds.labels(stage=STAGE)
    lag = None
    for post, scored in sent:
        lag = (scored.scored_at - post.published_at).total_seconds()
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
