"""The score stage: posts -> scored-posts (bad input -> dead-letters)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import faust

from monitor.errors import InvalidRecordError
from monitor.pipelines import Pipeline
from monitor.records import parse_post, utc_now

log = logging.getLogger(__name__)

STAGE = "score"


def register(app: faust.App, pipeline: Pipeline) -> faust.types.AgentT:
    """Add the ``score_posts`` agent to ``app``."""
    settings = pipeline.settings

    @app.agent(pipeline.topics.posts, name="score_posts")
    async def score_posts(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            settings.score_batch_size, within=settings.score_batch_seconds
        ):
            await score_events(pipeline, events)

    return score_posts


async def score_events(pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
    """Score a batch of raw post events; each event succeeds or is dead-lettered."""
    started = time.perf_counter()
    for event in events:
        message = event.message
        try:
            await score_event(pipeline, event.value)
        except Exception as exc:  # noqa: BLE001 - one boundary per event, see STYLE 4
            reason = (
                exc.reason
                if isinstance(exc, InvalidRecordError)
                else (f"scoring failed: {type(exc).__name__}: {exc}")
            )
            if not isinstance(exc, InvalidRecordError):
                log.exception(
                    "scoring failed at %s[%s]@%s",
                    message.topic,
                    message.partition,
                    message.offset,
                )
            else:
                pipeline.metrics.posts_consumed.labels(source="unknown").inc()
            await pipeline.dead_letter(
                stage=STAGE,
                reason=reason,
                payload=event.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                source=getattr(exc, "source", "unknown"),
                post_id=getattr(exc, "post_id", None),
            )
    if events:
        per_event = (time.perf_counter() - started) / len(events)
        pipeline.metrics.stage_seconds.labels(stage=STAGE).observe(per_event)


async def score_event(pipeline: Pipeline, payload: bytes) -> None:
    """Validate, score and forward one post.

    Raises:
        InvalidRecordError: If the payload is not a valid post.
        Exception: Whatever scoring raised, tagged with ``source``/``post_id``.

    """
    post = parse_post(payload)
    metrics = pipeline.metrics
    metrics.posts_consumed.labels(source=post.source).inc()
    try:
        now = utc_now()
        scored = pipeline.scorer.score(post, now=now)
    except Exception as exc:
        exc.source, exc.post_id = post.source, post.id  # type: ignore[attr-defined]
        raise
    await pipeline.topics.scored_posts.send(
        key=post.id.encode("utf-8"), value=scored.dumps()
    )
    metrics.posts_scored.labels(source=post.source).inc()
    lag = (now - post.published_at).total_seconds()
    metrics.event_lag_seconds.labels(stage=STAGE).observe(max(lag, 0.0))
    metrics.event_time_lag.labels(stage=STAGE).set(lag)
