"""Faust agents: thin wiring that moves records between topics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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
