"""Empty Kafka fetches paced on the client, for brokers that answer them at once.

A Kafka broker holds a fetch that finds no new records for up to the
consumer's ``fetch_max_wait_ms`` (Faust asks for 1.5 s), so an idle consumer
sends a fetch or two a second. The embedded server (noida-db) answers at
once instead: measured, one idle aiokafka consumer sent about 2,000 fetches a
second and used 30 % of a core, and a busy worker spent a third of its CPU
sending fetches for partitions with nothing new.

:func:`pace_empty_fetches` makes a fetch that came back empty sooner than
:data:`MIN_EMPTY_FETCH_SECONDS` wait out the rest of that time before the
consumer sends the next one to the same broker. Against a real broker it
changes nothing (an empty fetch already took ``fetch_max_wait_ms``); a fetch
that brings records is never delayed. The price on a broker that does not
wait: a record arriving at an idle partition waits up to that long longer.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.consumer.fetcher import Fetcher

#: An empty fetch answered sooner than this is held until this long after it
#: was sent (seconds).
MIN_EMPTY_FETCH_SECONDS = 0.05

_FetchRequest = Callable[..., Awaitable[bool]]


def pace_empty_fetches(minimum: float = MIN_EMPTY_FETCH_SECONDS) -> None:
    """Pace empty fetches of every aiokafka consumer in this process (idempotent).

    Args:
        minimum: Seconds an empty fetch takes at least, from send to the
            next fetch to the same broker.

    """
    current = Fetcher._proc_fetch_request
    original: _FetchRequest = getattr(current, "__wrapped__", current)

    @functools.wraps(original)
    async def paced(self: Fetcher, *args: Any, **kwargs: Any) -> bool:
        started = time.monotonic()
        has_new_data = await original(self, *args, **kwargs)
        if not has_new_data:
            left = minimum - (time.monotonic() - started)
            if left > 0:
                try:
                    await asyncio.sleep(left)
                except asyncio.CancelledError:
                    # As aiokafka's own: the consumer closing, or the
                    # partition unassigned, cancels the request quietly.
                    return False
        return has_new_data

    Fetcher._proc_fetch_request = paced  # type: ignore[method-assign]
