"""Bounds shared by the sources: a token-bucket rate and the recent post ids.

The webhook (:mod:`monitor.web.ingest`) and the polling fetchers
(:mod:`monitor.sources.http`, :mod:`monitor.sources.http_poll`,
:mod:`monitor.sources.rss`) use the same two: time is passed in, nothing here
sleeps or reads a clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator

#: Post ids remembered per source to drop exact repeats (~100 bytes each).
RECENT_IDS = 10_000


class TokenBucket:
    """A rate of ``per_second`` tokens, holding at most ``burst``; time passed in."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second, self.burst = per_second, burst
        self._tokens = float(burst)
        self._at_s: float | None = None

    def take(self, cost: int, now_s: float) -> float:
        """Take ``cost`` tokens (at most ``burst``) if there are enough.

        Returns:
            0 if taken, else the seconds to wait before they would be there
            (nothing is taken then).

        """
        if self._at_s is not None:
            elapsed = max(0.0, now_s - self._at_s)
            self._tokens = min(self.burst, self._tokens + elapsed * self.per_second)
        self._at_s = now_s
        cost = min(cost, self.burst)
        if self._tokens >= cost:
            self._tokens -= cost
            return 0.0
        return (cost - self._tokens) / self.per_second


class RecentIds:
    """The last ``limit`` post ids accepted, to drop exact repeats."""

    def __init__(self, limit: int = RECENT_IDS, ids: Iterable[str] = ()) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.add(list(ids))

    def __contains__(self, post_id: object) -> bool:
        return post_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        """Iterate oldest first."""
        return iter(self._ids)

    def add(self, post_ids: Iterable[str]) -> None:
        """Remember ids (call once Kafka has them), forgetting the oldest."""
        for post_id in post_ids:
            self._ids[post_id] = None
            self._ids.move_to_end(post_id)
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)
