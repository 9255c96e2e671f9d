"""The score stage: posts -> scored-posts (bad input -> dead-letters)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence

import faust

from monitor.errors import InvalidRecordError
from monitor.pipelines import Pipeline, register_batch_agent
from monitor.records import Post, ScoredPost, parse_post

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
    """
    metrics = pipeline.metrics
    started = time.perf_counter()
    valid: list[tuple[faust.EventT, Post]] = []
    for event in events:
        try:
            post = parse_post(event.value)
        except InvalidRecordError as exc:
            metrics.posts_consumed.labels(source="unknown").inc()
            await _dead_letter(pipeline, event, exc.reason)
            continue
        metrics.posts_consumed.labels(source=pipeline.source_label(post.source)).inc()
        valid.append((event, post))
    cache = pipeline.scorer.cache
    hits, misses = cache.hits, cache.misses
    results = await asyncio.to_thread(
        pipeline.scorer.score_many, [post for _, post in valid]
    )
    metrics.score_cache.labels(result="hit").inc(cache.hits - hits)
    metrics.score_cache.labels(result="miss").inc(cache.misses - misses)
    deliveries: list[Awaitable[object]] = []
    for (event, post), result in zip(valid, results, strict=True):
        try:
            if isinstance(result, Exception):
                raise result
            deliveries.append(await forward(pipeline, post, result))
        except Exception as exc:  # noqa: BLE001 - one boundary per event, see STYLE 4
            log.error("scoring post %s failed", post.id, exc_info=exc)
            await _dead_letter(
                pipeline, event, f"scoring failed: {type(exc).__name__}: {exc}", post
            )
    # The batch is done only when the broker has every scored post; if one
    # was refused this raises and the whole batch is handled again.
    await asyncio.gather(*deliveries)
    if events:
        per_event = (time.perf_counter() - started) / len(events)
        metrics.stage_seconds.labels(stage=STAGE).observe(per_event)


async def forward(
    pipeline: Pipeline, post: Post, scored: ScoredPost
) -> Awaitable[object]:
    """Send one scored post to the scored-posts topic and count it.

    Returns:
        The delivery future; await it to know the broker has the record.

    """
    delivery = await pipeline.topics.scored_posts.send(
        key=post.id.encode("utf-8"), value=scored.dumps()
    )
    metrics = pipeline.metrics
    metrics.posts_scored.labels(source=pipeline.source_label(post.source)).inc()
    lag = (scored.scored_at - post.published_at).total_seconds()
    metrics.event_lag_seconds.labels(stage=STAGE).observe(max(lag, 0.0))
    metrics.event_time_lag.labels(stage=STAGE).set(lag)
    return delivery


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
