"""Replaying a file of posts into the posts topic, with a progress bar."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from monitor.records import Post
from monitor.settings import Settings
from monitor.sources.files import count_lines, read_posts
from monitor.sources.pacing import DEFAULT_MAX_GAP, Pacer
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


class _Stamper:
    """Moves timestamps for ``--shift-to-now``: the file's first post is now."""

    def __init__(self, pacer: Pacer | None) -> None:
        self.pacer = pacer
        self.start = datetime.now(timezone.utc)
        self.offset: timedelta | None = None

    def __call__(self, post: Post) -> Post:
        if self.pacer is not None:  # the post's place on the paced timeline
            moved = self.start + timedelta(seconds=self.pacer.place(post.published_at))
        else:  # one offset for the whole file: gaps kept as they are
            if self.offset is None:
                self.offset = self.start - post.published_at
            moved = post.published_at + self.offset
        return post.derive(published_at=moved)  # type: ignore[no-any-return]


async def replay_file(
    settings: Settings,
    path: Path,
    *,
    rate: float | None = None,
    speed: float | None = None,
    max_gap: float = DEFAULT_MAX_GAP,
    shift_to_now: bool = False,
    progress: bool = False,
) -> ReplaySummary:
    """Validate every record of ``path`` and send the valid ones, in file order.

    Args:
        settings: Resolved settings (``kafka_url`` set).
        path: JSON Lines or CSV file.
        rate: At most this many posts per second; None for no limit.
        speed: Pace posts by their ``published_at`` at this many times real
            time (:class:`~monitor.sources.pacing.Pacer`); None: not paced.
        max_gap: With ``speed``, the longest wait between two posts (s).
        shift_to_now: Move the timestamps so the first post is published now
            (with ``speed``, each post at the moment it is sent), so the file
            plays as live traffic.
        progress: Show a progress bar on stderr.

    """
    assert settings.kafka_url is not None
    await prepare_topics(settings)
    summary = ReplaySummary()
    started = time.perf_counter()
    publisher = PostPublisher(settings.kafka_url, settings.topic_posts)
    await publisher.start()
    limiter = RateLimiter(rate)
    pacer = Pacer(speed, max_gap) if speed else None
    stamp = _Stamper(pacer) if shift_to_now else None
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
                post = record.post
                if pacer is not None:
                    delay = pacer.delay(post.published_at, time.monotonic())
                    if delay > 0:
                        await asyncio.sleep(delay)
                await limiter.wait()
                await publisher.publish(stamp(post) if stamp else post)
                summary.sent += 1
        finally:
            await publisher.close()
    summary.seconds = time.perf_counter() - started
    return summary
