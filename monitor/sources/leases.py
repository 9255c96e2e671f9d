"""Which worker polls which source: leases held through a Kafka consumer group.

With several workers, each polling source must run in exactly one of them at a
time, or posts are fetched twice and cursors race. The sources are laid on the
partitions ("slots") of a ``source-leases`` topic that carries no messages;
the workers join one consumer group on it, and Kafka's group protocol assigns
every slot to one member. A worker runs the pollers of the slots it holds:
started in ``on_partitions_assigned``, stopped (their page finished and their
cursor written) in ``on_partitions_revoked``, which the group protocol awaits
before it hands the slot to another member. A worker that dies stops
heartbeating and its slots move after the session timeout.

:func:`slot_of` and :func:`owned` are pure; :class:`SourceLeases` is the
group member.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: Default number of slots: more than any deployment's worker count, so that
#: adding a worker moves some sources to it.
DEFAULT_SLOTS = 16
#: Seconds a stopping poller gets to finish its page before it is cancelled.
STOP_GRACE_SECONDS = 10.0


def slot_of(name: str, names: Collection[str], slots: int) -> int:
    """Return the slot of source ``name`` among ``names``.

    Sources take slots in the order of their names, wrapping around, so up to
    ``slots`` sources each get a slot of their own (a hash could put two on
    one slot and so on one worker). Every worker reading the same sources
    file computes the same layout.

    Raises:
        ValueError: If ``name`` is not in ``names`` or ``slots`` < 1.

    """
    if slots < 1:
        raise ValueError("slots must be >= 1")
    ordered = sorted(set(names))
    try:
        return ordered.index(name) % slots
    except ValueError:
        raise ValueError(f"unknown source {name!r}") from None


def owned(names: Collection[str], held: Iterable[int], slots: int) -> list[str]:
    """Return the sources, in name order, whose slot is in ``held``."""
    held = set(held)
    return [n for n in sorted(set(names)) if slot_of(n, names, slots) in held]


class SourceLeases:
    """One worker's membership in the source-lease group.

    Args:
        names: Every polling source in the sources file.
        start_source: Awaited to start polling a source this worker now holds.
        stop_source: Awaited to stop one it lost (finish the page, write the
            cursor); given :data:`STOP_GRACE_SECONDS` before it is cancelled.
        bootstrap: Kafka ``host:port`` list.
        topic: The lease topic (``slots`` partitions; created by the caller).
        group_id: The lease group (one per deployment).
        slots: The topic's partition count.
        instance_id: Static membership id (``MONITOR_INSTANCE_ID``), if any:
            a restarted worker gets its slots back without a rebalance.
        consumer_factory: Builds the consumer (aiokafka's by default).

    """

    def __init__(
        self,
        names: Sequence[str],
        start_source: Callable[[str], Awaitable[None]],
        stop_source: Callable[[str], Awaitable[None]],
        *,
        bootstrap: str,
        topic: str,
        group_id: str,
        slots: int = DEFAULT_SLOTS,
        instance_id: str | None = None,
        consumer_factory: Callable[..., Any] | None = None,
    ) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self.names = tuple(sorted(set(names)))
        self.slots = slots
        self.topic = topic
        self.group_id = group_id
        self.bootstrap = bootstrap
        self.instance_id = instance_id
        self._start_source = start_source
        self._stop_source = stop_source
        self._factory = consumer_factory
        self._running: set[str] = set()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()  # set after every (re)assignment

    @property
    def running(self) -> frozenset[str]:
        """The sources this worker polls now."""
        return frozenset(self._running)

    async def start(self) -> None:
        """Join the group; pollers start as slots are assigned."""
        from aiokafka import ConsumerRebalanceListener

        leases = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await leases._release({tp.partition for tp in revoked})

            async def on_partitions_assigned(self, assigned: Any) -> None:
                await leases._acquire({tp.partition for tp in assigned})

        self._consumer = self._new_consumer()
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=Listener())
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop(self) -> None:
        """Stop every poller (cursors written), then leave the group."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._release(set(range(self.slots)))
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    def _new_consumer(self) -> Any:
        if self._factory is not None:
            return self._factory()
        from aiokafka import AIOKafkaConsumer

        options: dict[str, Any] = {}
        if self.instance_id:
            options["group_instance_id"] = f"{self.instance_id}-sources"
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            **options,
        )

    async def _poll(self) -> None:
        # The topic carries nothing; polling keeps the membership alive and
        # runs the rebalance callbacks.
        while True:
            try:
                await self._consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the membership going
                log.warning("source leases: %s; retrying", exc)
                await asyncio.sleep(1.0)

    async def _acquire(self, held: set[int]) -> None:
        for name in owned(self.names, held, self.slots):
            if name in self._running:
                continue
            try:
                await self._start_source(name)
            except Exception:  # noqa: BLE001 - one source must not stop the rest
                log.exception("source %s did not start", name)
                continue
            self._running.add(name)
            log.info("polling source %s (slot %d)", name, self._slot(name))
        self.changed.set()

    async def _release(self, lost: set[int]) -> None:
        for name in owned(self.names, lost, self.slots):
            if name not in self._running:
                continue
            try:
                await asyncio.wait_for(self._stop_source(name), STOP_GRACE_SECONDS)
            except Exception:  # noqa: BLE001 - the slot moves on regardless
                log.exception("source %s did not stop cleanly", name)
            self._running.discard(name)
            log.info("stopped polling source %s", name)
        self.changed.set()

    def _slot(self, name: str) -> int:
        return slot_of(name, self.names, self.slots)
