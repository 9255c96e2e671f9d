"""The Kafka topics, each declared once.

``posts`` carries :class:`~monitor.records.Post` (the public post format),
``scored-posts`` :class:`~monitor.records.ScoredPost` and ``dead-letters``
:class:`~monitor.records.DeadLetter`.

Agents read raw bytes and decode them themselves, so that a record that does
not decode becomes a dead letter instead of crashing the agent (Faust acks
and drops an event whose value fails to deserialise).
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from monitor.settings import Settings


@dataclass(frozen=True)
class Topics:
    """The topics of one app."""

    posts: faust.TopicT
    scored_posts: faust.TopicT
    bursts: faust.TopicT
    tickets: faust.TopicT
    dead_letters: faust.TopicT


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    """Declare the topics on ``app`` (raw bytes keys and values)."""

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
            replicas=settings.topic_replicas,
        )

    return Topics(
        posts=topic(settings.topic_posts),
        scored_posts=topic(settings.topic_scored_posts),
        bursts=topic(settings.topic_bursts),
        tickets=topic(settings.topic_tickets),
        dead_letters=topic(settings.topic_dead_letters),
    )
