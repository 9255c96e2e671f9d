"""People's decisions to mute triggers: silences and maintenance windows.

Both are judged in event time by default: against the trigger's
:attr:`~monitor.analysis.tickets.model.Trigger.event_time` (the crossing
post's ``published_at``, else its window's start), so a backlog processed
hours later is muted exactly when its posts were published during the
silence or the maintenance. A silence may choose the wall clock instead
(``clock: wall``): it then mutes whatever arrives while it is active, however
old, the way Alertmanager silences work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, tzinfo
from enum import StrEnum

from monitor.analysis.tickets.model import (
    InvalidPolicyError,
    Trigger,
    require_aware,
)


class SilenceClock(StrEnum):
    """Which time a silence is judged by."""

    EVENT = "event"
    WALL = "wall"


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
        clock: ``event`` (default): active if the trigger's event time is in
            ``[starts_at, expires_at)``; ``wall``: if the decision time is.

    """

    silence_id: str
    starts_at: datetime
    expires_at: datetime
    author: str
    reason: str
    topic: str | None = None
    keyword: str | None = None
    rule: str | None = None
    clock: SilenceClock = SilenceClock.EVENT

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "clock", SilenceClock(self.clock))
        except ValueError:
            raise InvalidPolicyError(
                f"silence {self.silence_id}: clock must be event or wall"
            ) from None
        require_aware(self.starts_at, "silence start")
        require_aware(self.expires_at, "silence expiry")
        if self.expires_at <= self.starts_at:
            raise InvalidPolicyError(f"silence {self.silence_id}: expires before start")
        if self.topic is None and self.keyword is None and self.rule is None:
            raise InvalidPolicyError(
                f"silence {self.silence_id}: needs a topic, keyword or rule to match"
            )

    def matches(self, trigger: Trigger, now: datetime) -> bool:
        """Return True if active at the trigger's time and every matcher fits.

        Args:
            trigger: What fired.
            now: Decision time (wall clock), used by ``clock: wall`` only.

        """
        moment = trigger.event_time if self.clock == SilenceClock.EVENT else now
        return (
            self.starts_at <= moment < self.expires_at
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
        """Return True if the window covers ``topic`` at ``now`` (event time)."""
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
