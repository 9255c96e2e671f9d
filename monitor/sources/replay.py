"""Replaying a file of posts into the posts topic, with a progress bar."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from monitor.settings import Settings
from monitor.sources.files import count_lines, read_posts
from monitor.sources.publisher import PostPublisher, RateLimiter
from monitor.topics import prepare_topics


@dataclass
class ReplaySummary:
    """What a replay did.

    Attributes:
        sent: Posts acknowledged by the broker.
        rejected: ``(line, reason)`` of every line that was not a valid post.
        seconds: Wall time of the replay.

    """

    sent: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0


async def replay_file(
    settings: Settings, path: Path, *, rate: float | None = None, progress: bool = False
) -> ReplaySummary:
    """Validate every record of ``path`` and send the valid ones, in file order.

    Args:
        settings: Resolved settings (``kafka_url`` set).
        path: JSON Lines or CSV file.
        rate: At most this many posts per second; None for no limit.
        progress: Show a progress bar on stderr.

    """
    assert settings.kafka_url is not None
    await prepare_topics(settings)
    summary = ReplaySummary()
    started = time.perf_counter()
    publisher = PostPublisher(settings.kafka_url, settings.topic_posts)
    await publisher.start()
    limiter = RateLimiter(rate)
    with Progress(
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not progress,
    ) as bar:
        task = bar.add_task("replay", total=count_lines(path))
        try:
            for record in read_posts(path):
                bar.advance(task)
                if record.post is None:
                    summary.rejected.append((record.line, record.error or "invalid"))
                    continue
                await limiter.wait()
                await publisher.publish(record.post)
                summary.sent += 1
        finally:
            await publisher.close()
    summary.seconds = time.perf_counter() - started
    return summary
