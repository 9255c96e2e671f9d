"""Faust agents: thin wiring that moves records between topics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from monitor.errors import InvalidRecordError
from monitor.metrics import MonitorMetrics, SourceLabels
from monitor.records import DeadLetter, decode_scored_post, encode_payload, utc_now
from monitor.scoring import PostScorer
from monitor.settings import Settings
from monitor.sinks.base import DocumentSink
from monitor.topics import Topics

log = logging.getLogger(__name__)

#: Dead letters keep at most this much of the payload (topic, partition and
#: offset still locate the original): a dead letter must fit in a Kafka message.
MAX_DEAD_LETTER_PAYLOAD_CHARS = 256 * 1024
#: Backoff for a batch whose handler failed, doubling up to the maximum.
BATCH_RETRY_INITIAL_SECONDS = 0.5
BATCH_RETRY_MAX_SECONDS = 30.0


@dataclass
class Pipeline:
    """What the agents share: settings, topics, metrics and the sinks."""

    settings: Settings
    topics: Topics
    metrics: MonitorMetrics
    scorer: PostScorer
    posts_sink: DocumentSink
    windows_sink: DocumentSink | None = None
    source_label: SourceLabels = field(default_factory=SourceLabels)

    async def dead_letter(
        self,
        *,
        stage: str,
        reason: str,
        payload: bytes | str | None,
        topic: str,
        partition: int | None = None,
        offset: int | None = None,
        source: str = "unknown",
        post_id: str | None = None,
    ) -> None:
        """Send a record a stage gave up on to the dead-letter topic, and count it."""
        text, encoding = encode_payload(payload)
        truncated = len(text) > MAX_DEAD_LETTER_PAYLOAD_CHARS
        letter = DeadLetter(
            stage=stage,
            reason=reason,
            payload=text[:MAX_DEAD_LETTER_PAYLOAD_CHARS],
            payload_encoding=encoding,
            payload_truncated=truncated,
            topic=topic,
            partition=partition,
            offset=offset,
            source=source,
            post_id=post_id,
            failed_at=utc_now(),
        )
        log.warning(
            "dead letter from %s (post %s, %s[%s]@%s): %s",
            stage,
            post_id,
            topic,
            partition,
            offset,
            reason,
        )
        delivery = await self.topics.dead_letters.send(
            key=(post_id or "").encode("utf-8") or None, value=letter.dumps()
        )
        await delivery  # raises if the broker refused it: the batch is retried
        self.metrics.posts_dead_lettered.labels(
            stage=stage, source=self.source_label(source)
        ).inc()

    async def dead_letter_event(
        self,
        stage: str,
        event: faust.EventT,
        reason: str,
        *,
        source: str = "unknown",
        post_id: str | None = None,
    ) -> None:
        """Dead-letter a consumed event with its raw value and where it came from."""
        message = event.message
        await self.dead_letter(
            stage=stage,
            reason=reason,
            payload=event.value,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            source=source,
            post_id=post_id,
        )


async def decode_scored_events(
    pipeline: Pipeline, stage: str, events: Sequence[faust.EventT]
) -> list[tuple[faust.EventT, dict[str, Any] | None]]:
    """Decode ``scored-posts`` events; each undecodable one is dead-lettered.

    Returns every event, in order, with its decoded post, or None for one
    that went to the dead letters (a stage still has to step past it).
    """
    decoded: list[tuple[faust.EventT, dict[str, Any] | None]] = []
    for event in events:
        try:
            decoded.append((event, decode_scored_post(event.value)))
        except InvalidRecordError as exc:
            await pipeline.dead_letter_event(
                stage, event, f"not a ScoredPost: {exc.reason}", **_identity(event)
            )
            decoded.append((event, None))
    return decoded


def _identity(event: faust.EventT) -> dict[str, str]:
    """Return an invalid record's post id and source, if it has them."""
    try:
        data = orjson.loads(event.value)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    found = {"post_id": data.get("post_id"), "source": data.get("source")}
    return {field: value for field, value in found.items() if isinstance(value, str)}


BatchHandler = Callable[["Pipeline", Sequence[faust.EventT]], Awaitable[None]]


def register_batch_agent(
    app: faust.App,
    pipeline: Pipeline,
    *,
    topic: faust.TopicT,
    name: str,
    batch_size: int,
    batch_seconds: float,
    handle: BatchHandler,
) -> faust.types.AgentT:
    """Add an agent that hands ``handle`` batches of raw events from ``topic``.

    Faust acknowledges a ``take_events`` batch when the agent moves on, even
    if the handler raised. So a failing batch is never let go: it is handled
    again, with backoff, until it succeeds (handlers are idempotent: records
    are keyed by post id downstream). A batch that keeps failing stalls its
    stage, visible in ``monitor_batch_retries_total``, instead of vanishing.
    """

    async def consume(stream: faust.StreamT) -> None:
        await consume_batches(
            stream,
            pipeline,
            name=name,
            batch_size=batch_size,
            batch_seconds=batch_seconds,
            handle=handle,
        )

    consume.__name__ = consume.__qualname__ = name  # Faust names the agent after it
    return app.agent(topic, name=name)(consume)


async def consume_batches(
    stream: faust.StreamT,
    pipeline: Pipeline,
    *,
    name: str,
    batch_size: int,
    batch_seconds: float,
    handle: BatchHandler,
) -> None:
    """Hand batches to ``handle``, handling a failed batch again until it succeeds."""
    async for events in stream.take_events(batch_size, within=batch_seconds):
        attempt = 0
        while True:
            try:
                await handle(pipeline, events)
                break
            except Exception:
                wait = min(
                    BATCH_RETRY_MAX_SECONDS, BATCH_RETRY_INITIAL_SECONDS * 2**attempt
                )
                attempt += 1
                pipeline.metrics.batch_retries.labels(stage=name).inc()
                log.exception(
                    "%s: a batch of %d failed (attempt %d); retrying in %.1f s",
                    name,
                    len(events),
                    attempt,
                    wait,
                )
                await asyncio.sleep(wait)
