"""People's decisions to mute triggers: silences and maintenance windows.

A :class:`Silence` is checked against the wall clock when a trigger arrives;
a :class:`MaintenanceWindow` against the trigger's own window (event time),
see :meth:`~monitor.analysis.tickets.policy.TicketPolicy.decide`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, tzinfo

from monitor.analysis.tickets.model import (
    InvalidPolicyError,
    Trigger,
    require_aware,
)


@dataclass(frozen=True)
class Silence:
    """A person's decision to mute matching triggers for a while.

    Attributes:
        silence_id: Id shown in decisions (``S-...``).
        starts_at: From when it applies (inclusive, timezone-aware).
        expires_at: Until when (exclusive, timezone-aware).
        author: Who created it.
        reason: Why.
        topic: Matches this topic only, if set.
        keyword: Matches this keyword only, if set.
        rule: Matches this rule name only, if set.

    """

    silence_id: str
    starts_at: datetime
    expires_at: datetime
    author: str
    reason: str
    topic: str | None = None
    keyword: str | None = None
    rule: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.starts_at, "silence start")
        require_aware(self.expires_at, "silence expiry")
        if self.expires_at <= self.starts_at:
            raise InvalidPolicyError(f"silence {self.silence_id}: expires before start")
        if self.topic is None and self.keyword is None and self.rule is None:
            raise InvalidPolicyError(
                f"silence {self.silence_id}: needs a topic, keyword or rule to match"
            )

    def matches(self, trigger: Trigger, now: datetime) -> bool:
        """Return True if active at ``now`` and every set matcher fits."""
        return (
            self.starts_at <= now < self.expires_at
            and self.topic in (None, trigger.topic)
            and self.keyword in (None, trigger.keyword)
            and self.rule in (None, trigger.rule)
        )


@dataclass(frozen=True)
class MaintenanceWindow:
    """A period in which triggers on some topics are expected and muted.

    One-off windows set ``starts_at`` and ``ends_at``. Daily windows set
    ``daily_from``, ``daily_until`` and ``tz``, and may be bounded by
    ``starts_at``/``ends_at``; ``daily_until <= daily_from`` wraps past
    midnight (``23:00-01:00``).

    Attributes:
        name: Name shown in decisions.
        topics: Topics it covers; empty covers every topic.
        starts_at: Start (inclusive, timezone-aware), if any.
        ends_at: End (exclusive, timezone-aware), if any.
        daily_from: Daily start, local time in ``tz``.
        daily_until: Daily end (exclusive), local time in ``tz``.
        tz: Zone of the daily times, e.g. ``timezone(timedelta(hours=8))``.

    """

    name: str
    topics: tuple[str, ...] = ()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    daily_from: time | None = None
    daily_until: time | None = None
    tz: tzinfo | None = None

    def __post_init__(self) -> None:
        require_aware(self.starts_at, "maintenance start")
        require_aware(self.ends_at, "maintenance end")
        daily = (self.daily_from, self.daily_until, self.tz)
        if any(part is not None for part in daily) and None in daily:
            raise InvalidPolicyError(
                f"maintenance {self.name!r}: daily windows need from, until and tz"
            )
        if self.daily_from is None and (self.starts_at is None or self.ends_at is None):
            raise InvalidPolicyError(
                f"maintenance {self.name!r}: needs start and end, or a daily window"
            )
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise InvalidPolicyError(f"maintenance {self.name!r}: ends before start")

    def is_active(self, topic: str, now: datetime) -> bool:
        """Return True if the window covers ``topic`` at ``now``."""
        if self.topics and topic not in self.topics:
            return False
        if self.starts_at is not None and now < self.starts_at:
            return False
        if self.ends_at is not None and now >= self.ends_at:
            return False
        if self.daily_from is None or self.daily_until is None:
            return True
        local = now.astimezone(self.tz).time().replace(tzinfo=None)
        if self.daily_from < self.daily_until:
            return self.daily_from <= local < self.daily_until
        return local >= self.daily_from or local < self.daily_until
