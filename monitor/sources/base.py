"""The polling-source contract: pages of posts, cursors stored after the ack.

A fetcher turns one request into a `Page`; `run_source` publishes the page's posts,
waits for Kafka's acknowledgement and only then saves the page's cursor, so a restart
never skips a page (a crash between the ack and the save sends the page again with the
same post ids, which downstream dedup by id absorbs).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from monitor.records import Post

log = logging.getLogger(__name__)

#: Longest ``SourceHealth.last_error`` kept, in characters.
MAX_ERROR_CHARS = 200


@dataclass(frozen=True)
class Rejected:
    """One item of a page that is not a valid post.

    Attributes:
        index: Its position in the page.
        reason: A short label for metrics (``mapping``, ``invalid``, ``too_large``).
        detail: The reason in words an operator can act on (no secrets).
        raw: The item as received (JSON or XML bytes), for the dead letter.

    """

    index: int
    reason: str
    detail: str = ""
    raw: bytes = b""


@dataclass(frozen=True)
class Page:
    """One fetched page.

    Attributes:
        posts: Posts parsed from the page, in the order they appeared.
        rejected: Items that failed mapping or validation.
        duplicates: Items dropped as exact repeats (same source and id).
        cursor: The fetcher's opaque state to store once `posts` are acknowledged
            (None: keep the old). Fetchers encode in it what they need (vendor
            cursor, page, ETag, recent ids) and bound its size.
        more: True when another page is ready now (keep paging before sleeping).

    """

    posts: tuple[Post, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    duplicates: int = 0
    cursor: str | None = None
    more: bool = False


class Fetcher(Protocol):
    """Fetches one page after a cursor; knows nothing of Kafka."""

    async def fetch(self, cursor: str | None) -> Page:
        """Fetch the page after `cursor` (None: from the start)."""
        ...

    async def close(self) -> None:
        """Release the fetcher's session."""
        ...


class CursorStore(Protocol):
    """Durable cursors, one per source name."""

    async def load(self, source: str) -> str | None:
        """Return the last saved cursor of `source`, or None."""
        ...

    async def save(self, source: str, cursor: str) -> None:
        """Store `cursor` for `source`; returns once it is durable."""
        ...


@dataclass
class SourceHealth:
    """Per-source counters the caller reads (metrics wiring comes later).

    Attributes:
        fetched: Pages fetched successfully.
        accepted: Posts published and acknowledged.
        rejected: Rejected items by reason.
        duplicates: Items dropped as already seen.
        errors: Failed fetch/publish/save attempts.
        last_success_epoch_s: Wall-clock time of the last stored page, or None.
        cursor_lag_seconds: How far the cursor is behind now, when known: the age
            of the newest post of the last page with posts, 0 once a page ends
            the backlog (no posts, no more pages).
        last_error: Type and message of the last failed attempt (at most
            :data:`MAX_ERROR_CHARS` characters), or empty.

    """

    fetched: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    errors: int = 0
    last_success_epoch_s: float | None = None
    cursor_lag_seconds: float | None = None
    last_error: str = ""


def backoff_seconds(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 300.0,
    rng: random.Random | None = None,
) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)].

    Args:
        attempt: 0 for the first retry.
        base: Seconds of the first step.
        cap: Upper bound in seconds.
        rng: Random source (tests pass a seeded one).

    """
    ceiling = min(cap, base * (2 ** min(attempt, 62)))
    return (rng or random).uniform(0.0, ceiling)


async def run_source(
    name: str,
    fetcher: Fetcher,
    cursors: CursorStore,
    publish: Callable[[Sequence[Post]], Awaitable[None]],
    *,
    interval: float,
    reject: Callable[[Sequence[Rejected]], Awaitable[None]] | None = None,
    stop: asyncio.Event,
    health: SourceHealth | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    backoff_cap: float = 300.0,
    max_pages: int | None = None,
    report: Callable[[SourceHealth, str | None], Awaitable[None]] | None = None,
) -> SourceHealth:
    """Poll one source until `stop` is set; errors are retried, never fatal.

    `publish` must return only after Kafka acknowledged every post; the cursor is saved
    after that, never before.

    Args:
        name: The source name (the cursor key).
        fetcher: Fetches pages.
        cursors: Durable cursor store.
        publish: Sends posts and awaits their ack.
        interval: Seconds to sleep between polls once no page is ready.
        reject: Sends rejected items to the dead letters and awaits the ack
            (before the cursor moves past them).
        stop: Set to end the loop after the current step.
        health: Counters to update (a new one if None).
        clock: Wall clock in epoch seconds.
        sleep: Awaitable sleep (default: waits on `stop` with a timeout).
        backoff_cap: Longest wait after repeated errors, seconds.
        max_pages: Pages fetched back to back at most (while the fetcher says
            ``more``) before sleeping ``interval``; None: no limit.
        report: Awaited after every step, successful or not, with the counters
            and the stored cursor (metrics, the health record); a failure in it
            is logged and does not stop polling.

    Returns:
        The health counters.

    """
    state = health if health is not None else SourceHealth()

    async def pause(seconds: float) -> None:
        if sleep is not None:
            await sleep(seconds)
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    attempt = 0
    cursor: str | None = None
    loaded = False
    pages_in_poll = 0
    while not stop.is_set():
        wait = interval
        try:
            if not loaded:
                cursor = await cursors.load(name)
                loaded = True
            page = await fetcher.fetch(cursor)
            state.fetched += 1
            pages_in_poll += 1
            if page.posts:
                await publish(page.posts)
                state.accepted += len(page.posts)
            if page.rejected and reject is not None:
                await reject(page.rejected)
            for item in page.rejected:
                state.rejected[item.reason] += 1
            state.duplicates += page.duplicates
            if page.cursor is not None and page.cursor != cursor:
                await cursors.save(name, page.cursor)
                cursor = page.cursor
            now = clock()
            state.last_success_epoch_s = now
            if page.posts:
                newest = max(post.published_at.timestamp() for post in page.posts)
                state.cursor_lag_seconds = max(0.0, now - newest)
            elif not page.more:
                state.cursor_lag_seconds = 0.0
            attempt = 0
            if page.more and (max_pages is None or pages_in_poll < max_pages):
                wait = 0.0
            else:
                pages_in_poll = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is counted and retried
            state.errors += 1
            state.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            log.warning("source %s: %s; retrying", name, state.last_error)
            wait = backoff_seconds(attempt, cap=backoff_cap)
            # A server that asked for more time (429/503 Retry-After beyond what
            # a request waits itself) gets it, up to the cap.
            asked = getattr(exc, "retry_after", None)
            if isinstance(asked, int | float) and asked > 0:
                wait = max(wait, min(backoff_cap, float(asked)))
            attempt += 1
            pages_in_poll = 0
        if report is not None:
            try:
                await report(state, cursor)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - health reporting never stops polling
                log.exception("source %s: health report failed", name)
        if wait > 0:
            await pause(wait)
    return state
