"""Retrying a batch until its sink takes it: an outage delays, never drops.

A worker that is asked to stop must not wait forever for a sink that is down:
:class:`Shutdown` tells the retry loops that the worker is stopping, wakes
them from their backoff, and makes them give the batch up
(:class:`BatchAbandoned`) without acknowledging it, so it is redelivered
after the restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from monitor.errors import BatchAbandoned, SinkUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class Shutdown:
    """Whether the worker was asked to stop, and a backoff sleep that it ends.

    Create it inside the event loop that runs the stages (or let the first
    :meth:`sleep` do so lazily); :meth:`begin` must be called from that loop.
    """

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self.requested = False

    def begin(self) -> None:
        """Note that the worker is stopping; wake every backoff sleep now."""
        self.requested = True
        if self._event is not None:
            self._event.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the worker starts stopping meanwhile."""
        if self.requested:
            return
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass


def backoff_delays(initial: float, maximum: float) -> Callable[[int], float]:
    """Return ``attempt -> seconds``: doubling from ``initial``, capped."""

    def delay(attempt: int) -> float:
        # typeshed types int ** int as Any (a negative exponent gives a float).
        factor: float = 2 ** min(attempt, 32)
        return min(maximum, initial * factor)

    return delay


async def until_written(
    write: Callable[[], Awaitable[T]],
    *,
    initial: float,
    maximum: float,
    on_retry: Callable[[SinkUnavailable, float], None] | None = None,
    shutdown: Shutdown | None = None,
) -> T:
    """Call ``write`` until it stops raising :class:`SinkUnavailable`.

    Waits ``max(error.retry_after, backoff)`` between attempts, the backoff
    doubling from ``initial`` up to ``maximum`` seconds. Other exceptions
    propagate.

    Raises:
        BatchAbandoned: The sink was unavailable and ``shutdown`` says the
            worker is stopping: the caller must not acknowledge the batch.

    """
    delay = backoff_delays(initial, maximum)
    attempt = 0
    while True:
        try:
            return await write()
        except SinkUnavailable as exc:
            if shutdown is not None and shutdown.requested:
                raise BatchAbandoned(f"stopping while {exc}") from exc
            wait = min(maximum, max(exc.retry_after, delay(attempt)))
            if on_retry is not None:
                on_retry(exc, wait)
            log.warning("%s; retrying in %.1f s (attempt %d)", exc, wait, attempt + 1)
            attempt += 1
            if shutdown is not None:
                await shutdown.sleep(wait)
            else:
                await asyncio.sleep(wait)
