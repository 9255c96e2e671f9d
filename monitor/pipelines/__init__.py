"""Faust agents: thin wiring that moves records between topics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import faust

from monitor.metrics import MonitorMetrics
from monitor.records import DeadLetter, encode_payload, utc_now
from monitor.scoring import PostScorer
from monitor.settings import Settings
from monitor.sinks.base import DocumentSink
from monitor.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """What the agents share: settings, topics, metrics and the sinks."""

    settings: Settings
    topics: Topics
    metrics: MonitorMetrics
    scorer: PostScorer
    posts_sink: DocumentSink

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
        letter = DeadLetter(
            stage=stage,
            reason=reason,
            payload=text,
            payload_encoding=encoding,
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
        await self.topics.dead_letters.send(
            key=(post_id or "").encode("utf-8") or None, value=letter.dumps()
        )
        self.metrics.posts_dead_lettered.labels(stage=stage, source=source).inc()


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

    A batch is acknowledged (its offsets may be committed) only once
    ``handle`` returns, so a crash or stop mid-batch replays it.
    """

    async def consume(stream: faust.StreamT) -> None:
        async for events in stream.take_events(batch_size, within=batch_seconds):
            await handle(pipeline, events)

    consume.__name__ = consume.__qualname__ = name  # Faust names the agent after it
    return app.agent(topic, name=name)(consume)
