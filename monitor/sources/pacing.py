"""Pacing a replay by the posts' own timestamps (``monitor replay --speed``).

:class:`Pacer` turns each post's ``published_at`` into the wall-clock moment
it is due: the file's first post at once, every later one after the event-time
gap since the previous newest post, divided by the speed. It is pure (the
caller passes the clock) and keeps the schedule, not the last send, as its
reference, so slow sends do not accumulate drift.

Two bounds keep a file from stalling a replay:

- a post older than one already sent (out of order in the file) is due at
  once: a replay never waits backwards;
- a gap is shortened to at most ``max_gap`` seconds of wall time (a file with
  a quiet night plays the night as ``max_gap``).
"""

from __future__ import annotations

from datetime import datetime

#: Longest wall-clock wait between two posts by default (seconds).
DEFAULT_MAX_GAP = 60.0


class Pacer:
    """Schedules posts at ``speed`` times real time.

    Args:
        speed: Event seconds per wall second (> 0): 1 plays in real time,
            10 ten times faster.
        max_gap: Longest wall-clock wait between two posts (seconds, > 0).

    """

    def __init__(self, speed: float, max_gap: float = DEFAULT_MAX_GAP) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        if not max_gap > 0:
            raise ValueError("max_gap must be > 0")
        self.speed = speed
        self.max_gap = max_gap
        self._newest: datetime | None = None
        self._due: float | None = None
        self._start = 0.0

    def due(self, published_at: datetime, now: float) -> float:
        """Return the wall-clock time (on ``now``'s clock) to send this post.

        Args:
            published_at: The post's event time (timezone-aware).
            now: The current wall-clock reading, used for the first post.

        """
        if self._due is None or self._newest is None:
            self._due = self._start = now
            self._newest = published_at
            return self._due
        gap = (published_at - self._newest).total_seconds()
        if gap > 0:
            self._due += min(gap / self.speed, self.max_gap)
            self._newest = published_at
        return self._due

    def delay(self, published_at: datetime, now: float) -> float:
        """Return the seconds to wait before sending this post (>= 0)."""
        return max(0.0, self.due(published_at, now) - now)

    def place(self, published_at: datetime) -> float:
        """Return where a post sits on the replay's timeline (seconds from start).

        For a post :meth:`due` has just scheduled: its due time, less its
        lateness (how much older it is than the newest post so far) at the
        replay's speed. ``--shift-to-now`` stamps posts with start + place,
        so the replayed timestamps keep the file's order and scaled gaps.
        """
        if self._due is None or self._newest is None:
            raise ValueError("place() needs a post scheduled by due() first")
        late = max(0.0, (self._newest - published_at).total_seconds())
        return self._due - self._start - late / self.speed
