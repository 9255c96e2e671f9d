"""Live ticket changes for the console: the ``tickets`` topic, fanned out.

Every change the ticket service saves (an opening, a fold, a person's action,
an SLA escalation) is published to the ``tickets`` topic as
``{"ticket": ..., "event": ...}`` (:class:`TicketEventPublisher`). Every
worker's web server follows that topic from its end, with no consumer group
(:class:`TicketEventFollower`), so a change made through one worker reaches
the consoles connected to every other. :class:`TicketFeed` hands each message
to the connected streams (``GET /api/stream``).

The feed is a hint, not the record: Elasticsearch holds the tickets. A
console refetches what it shows on every (re)connect, so a message lost in a
crash or dropped for a slow reader costs a refresh, never a ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from monitor.analysis.tickets.codec import event_to_dict, ticket_to_dict
from monitor.analysis.tickets.model import Ticket, TicketEvent

log = logging.getLogger(__name__)

#: Messages a slow stream may fall behind before it is closed (it reconnects
#: and refetches).
SUBSCRIBER_BACKLOG = 256
#: Ticket changes waiting to be published before new ones are dropped.
PUBLISH_BACKLOG = 10_000
#: Largest ``tickets`` message a follower passes on (bytes).
MAX_MESSAGE_BYTES = 1024 * 1024


def feed_message(ticket: Ticket, event: TicketEvent) -> bytes:
    """Return the JSON the feed carries for one saved change.

    The ticket without its outbox (notice bookkeeping the console has no use
    for), and the event.
    """
    body = ticket_to_dict(ticket)
    body.pop("outbox", None)
    return orjson.dumps({"ticket": body, "event": event_to_dict(event)})


class TicketFeed:
    """Fans feed messages out to the streams connected to this web server.

    ``following`` is set while the feed's source delivers: always, for a feed
    nothing follows into (tests, a single process); for a followed feed, only
    while :class:`TicketEventFollower` reads the topic. A stream greets its
    client only once it is set, so "live" in a console means it.
    """

    def __init__(self, backlog: int = SUBSCRIBER_BACKLOG) -> None:
        self.backlog = backlog
        self._queues: set[asyncio.Queue[bytes | None]] = set()
        self.following = asyncio.Event()
        self.following.set()

    def interrupt(self) -> None:
        """End every stream (each client reconnects and refetches).

        For when the source stopped delivering: messages may have been missed.
        """
        for queue in list(self._queues):
            self._queues.discard(queue)
            if queue.full():  # make room for the end mark
                queue.get_nowait()
            queue.put_nowait(None)

    @property
    def subscribers(self) -> int:
        """Streams connected now."""
        return len(self._queues)

    def publish(self, message: bytes) -> None:
        """Hand ``message`` to every stream; close a stream that fell behind."""
        for queue in list(self._queues):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                log.info(
                    "ticket stream fell %d messages behind; closing it", self.backlog
                )
                self._queues.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait(None)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[bytes | None]]:
        """Yield a queue of messages; ``None`` means the stream must end."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(self.backlog)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)


class TicketEventPublisher:
    """Publishes saved ticket changes to the ``tickets`` topic, in order.

    :meth:`offer` is the ticket service's ``on_event`` callback (synchronous,
    never raises); one task sends what it queued, so messages keep the order
    the changes were saved in.

    Args:
        send: Sends one message: ``await send(key, value)``.
        backlog: Changes kept while the broker is slow; later ones are
            dropped with a warning (the feed is a hint, see the module).

    """

    def __init__(
        self,
        send: Callable[[bytes, bytes], Any],
        backlog: int = PUBLISH_BACKLOG,
    ) -> None:
        self._send = send
        self._queue: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue(backlog)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def offer(self, ticket: Ticket, event: TicketEvent) -> None:
        """Queue one saved change for the topic (drop it if the queue is full)."""
        try:
            self._queue.put_nowait(
                (ticket.ticket_id.encode(), feed_message(ticket, event))
            )
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("ticket feed backlog full; dropped %s", event.event_id)

    def start(self) -> None:
        """Start the sending task (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, timeout: float = 2.0) -> None:
        """Send what is queued (for up to ``timeout`` s), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            key, value = await self._queue.get()
            try:
                while True:
                    try:
                        await self._send(key, value)
                        break
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - the broker may be down
                        log.warning("ticket feed: send failed (%s); retrying", exc)
                        await asyncio.sleep(1.0)
            finally:
                self._queue.task_done()


class TicketEventFollower:
    """Follows the ``tickets`` topic from its end into a :class:`TicketFeed`.

    No consumer group: each web server reads every partition itself and
    commits nothing.

    Args:
        feed: Where messages go.
        bootstrap: Kafka ``host:port`` list.
        topic: The ``tickets`` topic's name.
        consumer_factory: Builds the consumer (aiokafka's by default).

    """

    def __init__(
        self,
        feed: TicketFeed,
        bootstrap: str,
        topic: str,
        *,
        consumer_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.feed = feed
        self.bootstrap = bootstrap
        self.topic = topic
        self._factory = consumer_factory
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        feed.following.clear()  # streams wait until the topic is followed

    def start(self) -> None:
        """Start following (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _consumer(self) -> Any:
        if self._factory is not None:
            return self._factory()
        from aiokafka import AIOKafkaConsumer

        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        )

    async def _run(self) -> None:
        while True:
            consumer = self._consumer()
            try:
                await consumer.start()
                await self._follow(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect on any failure
                log.warning("ticket feed: following %s failed (%s)", self.topic, exc)
            finally:
                if self.ready.is_set():  # was following: streams may miss some
                    self.ready.clear()
                    self.feed.following.clear()
                    self.feed.interrupt()
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(2.0)

    async def _follow(self, consumer: Any) -> None:
        from aiokafka import TopicPartition

        partitions: set[int] | None = None
        for _ in range(60):
            await consumer.topics()  # refreshes the cluster metadata
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                break
            await asyncio.sleep(0.5)
        if not partitions:
            raise RuntimeError(f"topic {self.topic!r} has no partitions yet")
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for partition in assigned:  # resolve the end offsets now
            await consumer.position(partition)
        self.ready.set()
        self.feed.following.set()
        log.info("ticket feed: following %s", self.topic)
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batches.values():
                for record in records:
                    value = record.value
                    if value and len(value) <= MAX_MESSAGE_BYTES:
                        self.feed.publish(bytes(value))
