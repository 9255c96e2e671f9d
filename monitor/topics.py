"""The Kafka topics, each declared once.

``posts`` carries :class:`~monitor.records.Post` (the public post format),
``scored-posts`` :class:`~monitor.records.ScoredPost`, ``window-partials``
one partition's counts of a closed window (JSON of
:class:`~monitor.analysis.windows.WindowAggregate`), ``bursts`` burst events,
``triggers`` rule triggers for the ticket policy and ``dead-letters``
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
    window_partials: faust.TopicT
    count_state: faust.TopicT
    merge_state: faust.TopicT
    bursts: faust.TopicT
    triggers: faust.TopicT
    tickets: faust.TopicT
    dead_letters: faust.TopicT


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    """Declare the topics on ``app`` (raw bytes keys and values)."""

    def topic(name: str, partitions: int = settings.topic_partitions) -> faust.TopicT:
        return app.topic(
            name,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
            replicas=settings.topic_replicas,
        )

    return Topics(
        posts=topic(settings.topic_posts),
        scored_posts=topic(settings.topic_scored_posts),
        window_partials=topic(settings.topic_window_partials, 1),
        count_state=topic(settings.topic_count_state),
        merge_state=topic(settings.topic_merge_state, 1),
        bursts=topic(settings.topic_bursts),
        triggers=topic(settings.topic_triggers, 1),
        tickets=topic(settings.topic_tickets),
        dead_letters=topic(settings.topic_dead_letters),
    )
