"""The score stage: posts -> scored-posts (bad input -> dead-letters)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import faust

from monitor.errors import InvalidRecordError
from monitor.pipelines import Pipeline, register_batch_agent
from monitor.records import Post, parse_post, utc_now

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
    """Score a batch of raw post events; each event succeeds or is dead-lettered."""
    metrics = pipeline.metrics
    started = time.perf_counter()
    for event in events:
        post: Post | None = None
        try:
            post = parse_post(event.value)
            metrics.posts_consumed.labels(source=post.source).inc()
            await score_post(pipeline, post)
        except Exception as exc:  # noqa: BLE001 - one boundary per event, see STYLE 4
            if post is None:
                metrics.posts_consumed.labels(source="unknown").inc()
            if isinstance(exc, InvalidRecordError):
                reason = exc.reason
            else:
                reason = f"scoring failed: {type(exc).__name__}: {exc}"
                log.exception("scoring post %s failed", post.id if post else None)
            message = event.message
            await pipeline.dead_letter(
                stage=STAGE,
                reason=reason,
                payload=event.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                source=post.source if post else "unknown",
                post_id=post.id if post else None,
            )
    if events:
        per_event = (time.perf_counter() - started) / len(events)
        metrics.stage_seconds.labels(stage=STAGE).observe(per_event)


async def score_post(pipeline: Pipeline, post: Post) -> None:
    """Score one valid post and send it to the scored-posts topic."""
    now = utc_now()
    scored = pipeline.scorer.score(post, now=now)
    await pipeline.topics.scored_posts.send(
        key=post.id.encode("utf-8"), value=scored.dumps()
    )
    metrics = pipeline.metrics
    metrics.posts_scored.labels(source=post.source).inc()
    lag = (now - post.published_at).total_seconds()
    metrics.event_lag_seconds.labels(stage=STAGE).observe(max(lag, 0.0))
    metrics.event_time_lag.labels(stage=STAGE).set(lag)
