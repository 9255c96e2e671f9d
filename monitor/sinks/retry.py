"""Retrying a batch until its sink takes it: an outage delays, never drops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from monitor.errors import SinkUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def backoff_delays(initial: float, maximum: float) -> Callable[[int], float]:
    """Return ``attempt -> seconds``: doubling from ``initial``, capped."""

    def delay(attempt: int) -> float:
        return min(maximum, initial * (2 ** min(attempt, 32)))

    return delay


async def until_written(
    write: Callable[[], Awaitable[T]],
    *,
    initial: float,
    maximum: float,
    on_retry: Callable[[SinkUnavailable, float], None] | None = None,
) -> T:
    """Call ``write`` until it stops raising :class:`SinkUnavailable`.

    Waits ``max(error.retry_after, backoff)`` between attempts, the backoff
    doubling from ``initial`` up to ``maximum`` seconds. Other exceptions
    propagate.
    """
    delay = backoff_delays(initial, maximum)
    attempt = 0
    while True:
        try:
            return await write()
        except SinkUnavailable as exc:
            wait = min(maximum, max(exc.retry_after, delay(attempt)))
            if on_retry is not None:
                on_retry(exc, wait)
            log.warning("%s; retrying in %.1f s (attempt %d)", exc, wait, attempt + 1)
            attempt += 1
            await asyncio.sleep(wait)
