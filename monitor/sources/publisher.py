"""Sending posts to the ``posts`` topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from aiokafka import AIOKafkaProducer

from monitor.records import Post, post_to_payload
from monitor.topics import bootstrap_servers


class PostPublisher:
    """Publishes posts in the public post format, keyed by post id.

    Waits for every broker acknowledgement (``acks=all``) on :meth:`flush`
    and :meth:`close`, so a post counted as sent is durable.
    """

    def __init__(self, kafka_url: str, topic: str, *, linger_ms: int = 5) -> None:
        """Prepare a producer for ``topic`` (connect with :meth:`start`).

        ``linger_ms`` is how long a batch waits for more posts: 5 for a steady
        stream (replay); 0 where each flush is a page or a request that waits
        for its acknowledgement anyway (pollers, the webhook).
        """
        self.topic = topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(kafka_url),
            acks="all",
            linger_ms=linger_ms,
            max_batch_size=256 * 1024,
        )
        self._pending: list[Awaitable[object]] = []

    async def start(self) -> None:
        """Connect to Kafka."""
        await self._producer.start()

    async def publish(self, post: Post) -> None:
        """Queue one post for sending; :meth:`flush` waits for it."""
        future = await self._producer.send(
            self.topic, value=post_to_payload(post), key=post.id.encode("utf-8")
        )
        self._pending.append(future)
        if len(self._pending) >= 1000:
            await self.flush()

    async def publish_raw(self, payload: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (for tests of bad input and for bridges)."""
        self._pending.append(
            await self._producer.send(self.topic, value=payload, key=key)
        )

    async def flush(self) -> None:
        """Wait until every queued post is acknowledged."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)

    async def close(self) -> None:
        """Flush and disconnect."""
        try:
            await self.flush()
        finally:
            await self._producer.stop()


class RateLimiter:
    """Paces a loop to at most ``rate`` iterations per second (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._start = time.monotonic()
        self._count = 0

    async def wait(self) -> None:
        """Sleep until the next iteration is due."""
        self._count += 1
        if not self.rate:
            return
        due = self._start + self._count / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
