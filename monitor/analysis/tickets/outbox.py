"""The outbox: notices kept in the ticket until every channel has accepted them.

A change that people should hear of queues a
:class:`~monitor.analysis.tickets.model.Notice` on the ticket itself, so the
notice is committed in the same optimistic-concurrency write as the change
(Elasticsearch has no multi-document transaction). One sender later delivers
what is due and removes each channel from the notice as it accepts it
(:func:`record_outcome`); a crash anywhere in between leaves the notice in the
ticket for the next sender, and the delivery id (``<notice_id>@<channel>``)
stays the same, so a receiver can drop a repeat.

Notice timing (Alertmanager's, per incident):

- the first notice of a new P1/P2 incident is due at once; of a P3/P4 one
  after ``group_wait`` (signals arriving together make one notice);
- later signals fold into one pending ``updated`` notice, due
  ``group_interval`` after the previous notice ("5 more updates");
- an escalation to P1/P2 and people's actions are due at once;
- an incident still ``open`` is told again every ``repeat_interval``.

Rate limits (:func:`plan_channel`): a channel that cannot take every due
notice now sends the most urgent singly and the rest as one digest; nothing
is dropped, and lower priorities never use the slots kept for P1.

Everything here is pure: time is passed in, and every function returns a new
ticket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.analysis.tickets.model import (
    PRIORITIES,
    Notice,
    NoticeKind,
    Priority,
    Ticket,
    TicketStatus,
    require_aware,
)

if TYPE_CHECKING:  # the policy imports this module
    from monitor.analysis.tickets.policy import TicketSettings

#: Notices a ticket's outbox holds at most; a further one folds into the last.
OUTBOX_LIMIT = 20
#: Kinds that go out as soon as they are queued, whatever the priority.
_AT_ONCE = frozenset({NoticeKind.ACKNOWLEDGED, NoticeKind.RESOLVED, NoticeKind.REPEAT})
_URGENT = frozenset({Priority.P1, Priority.P2})


def _rank(priority: Priority) -> int:
    return PRIORITIES.index(priority)


def _more_urgent(a: Priority, b: Priority) -> Priority:
    return a if _rank(a) <= _rank(b) else b


def notice_due(
    ticket: Ticket, kind: NoticeKind, now: datetime, settings: TicketSettings
) -> datetime:
    """When a new notice of ``kind`` about ``ticket`` may go out.

    Args:
        ticket: The ticket after the change (its priority decides).
        kind: What the notice tells of.
        now: Decision time (timezone-aware).
        settings: The group timings.

    Returns:
        ``now`` for P1/P2 openings and escalations and for people's actions;
        ``now + group_wait`` for other openings; for updates, the later of
        ``now`` and the previous notice plus ``group_interval``.

    """
    urgent = ticket.priority in _URGENT
    if kind in _AT_ONCE:
        return now
    if kind in (NoticeKind.OPENED, NoticeKind.REOPENED, NoticeKind.ESCALATED):
        if urgent:
            return now
        if kind != NoticeKind.ESCALATED:
            return now + timedelta(seconds=settings.group_wait_seconds)
    if ticket.last_notice_at is None:
        return now + timedelta(seconds=settings.group_wait_seconds)
    interval = timedelta(seconds=settings.group_interval_seconds)
    return max(now, ticket.last_notice_at + interval)


def queue_notice(
    ticket: Ticket,
    kind: NoticeKind,
    *,
    now: datetime,
    channels: Sequence[str],
    settings: TicketSettings,
    event_id: str | None = None,
    crossing_received_at: datetime | None = None,
) -> Ticket:
    """Put a notice in the ticket's outbox, or fold it into a waiting one.

    A notice no channel has accepted yet takes the new change in (its
    ``folded`` count grows, its priority and kind follow the more urgent
    one, and it becomes due sooner if the new change is more urgent), so a
    burst of changes makes one message. Otherwise a new notice is added,
    with id ``<ticket_id>#n<revision>``.

    Args:
        ticket: The ticket after the change (revision already stamped).
        kind: What the notice tells of.
        now: Decision time (timezone-aware).
        channels: Channels to tell; none queues nothing.
        settings: The group timings.
        event_id: The event it tells of.
        crossing_received_at: ``posts`` timestamp of the crossing post, for
            the latency histogram.

    Returns:
        The ticket with its outbox (and ``last_notice_at``) updated.

    """
    require_aware(now, "now")
    channels = tuple(dict.fromkeys(channels))
    if not channels:
        return ticket
    joined: tuple[str, ...] = ()
    unsent = any(not n.accepted and n.attempts == 0 for n in ticket.outbox)
    if not unsent and kind in (
        NoticeKind.UPDATED,
        NoticeKind.ESCALATED,
        NoticeKind.REPEAT,
    ):
        # A channel that joined with a new signal's rule has heard nothing of
        # the incident yet: it gets its own opening notice now, not an update
        # after group_interval (and the others' update does not hurry).
        told = set(ticket.delivery) | {c for n in ticket.outbox for c in n.channels}
        joined = tuple(c for c in channels if c not in told)
        channels = tuple(c for c in channels if c in told)
    if channels:
        ticket = _queue(
            ticket, kind, now, channels, settings, event_id, crossing_received_at
        )
    if joined:
        ticket = _queue(
            ticket,
            NoticeKind.OPENED,
            now,
            joined,
            settings,
            event_id,
            crossing_received_at,
            suffix="j",
        )
    return ticket


def _queue(
    ticket: Ticket,
    kind: NoticeKind,
    now: datetime,
    channels: tuple[str, ...],
    settings: TicketSettings,
    event_id: str | None,
    crossing_received_at: datetime | None,
    suffix: str = "",
) -> Ticket:
    """Queue one notice; ``suffix`` marks one that must not fold (own id)."""
    due = notice_due(ticket, kind, now, settings)
    waiting = [n for n in ticket.outbox if not n.accepted and n.attempts == 0]
    alone = suffix or kind in (NoticeKind.ACKNOWLEDGED, NoticeKind.RESOLVED)
    if (waiting and not alone) or len(ticket.outbox) >= OUTBOX_LIMIT:
        target = waiting[-1] if waiting and not alone else ticket.outbox[-1]
        merged_kind = target.kind
        if kind == NoticeKind.ESCALATED or target.kind == NoticeKind.UPDATED:
            merged_kind = kind if target.kind == NoticeKind.UPDATED else target.kind
        merged = replace(
            target,
            kind=merged_kind,
            priority=_more_urgent(target.priority, ticket.priority),
            due_at=min(target.due_at, due),
            channels=tuple(dict.fromkeys((*target.channels, *channels))),
            folded=target.folded + 1,
            crossing_received_at=target.crossing_received_at or crossing_received_at,
        )
        outbox = tuple(merged if n is target else n for n in ticket.outbox)
        return replace(ticket, outbox=outbox, last_notice_at=_latest(ticket, due))
    notice = Notice(
        notice_id=f"{ticket.ticket_id}#n{ticket.revision}{suffix}",
        kind=kind,
        priority=ticket.priority,
        created_at=now,
        due_at=due,
        channels=channels,
        event_id=event_id,
        crossing_received_at=crossing_received_at,
    )
    return replace(
        ticket,
        outbox=(*ticket.outbox, notice),
        last_notice_at=_latest(ticket, due),
        notices=ticket.notices + 1,
    )


def _latest(ticket: Ticket, due: datetime) -> datetime:
    if ticket.last_notice_at is None:
        return due
    return max(ticket.last_notice_at, due)


def repeat_due(ticket: Ticket, now: datetime, settings: TicketSettings) -> bool:
    """Return True if an ``open`` ticket has gone ``repeat_interval`` without a notice.

    Nothing is due while a notice is still waiting in the outbox.
    """
    if ticket.status != TicketStatus.OPEN or ticket.outbox:
        return False
    since = ticket.last_notice_at or ticket.opened_at
    return now - since >= timedelta(seconds=settings.repeat_interval_seconds)


def next_due(ticket: Ticket) -> datetime | None:
    """Return the earliest ``due_at`` in the outbox, or ``None`` if it is empty."""
    return min((n.due_at for n in ticket.outbox if n.channels), default=None)


def due_deliveries(ticket: Ticket, now: datetime) -> list[tuple[Notice, str]]:
    """Every ``(notice, channel)`` of the outbox that is due at ``now``."""
    return [
        (notice, channel)
        for notice in ticket.outbox
        if notice.due_at <= now
        for channel in notice.channels
    ]


def record_outcome(
    ticket: Ticket,
    notice_id: str,
    channel: str,
    *,
    accepted: bool,
    now: datetime,
    settings: TicketSettings,
    error: str = "",
    give_up: bool = False,
) -> tuple[Ticket, bool]:
    """Apply one channel's outcome of one notice to the ticket.

    Idempotent: an outcome for a notice or channel no longer pending changes
    nothing (a repeat after a crash, or a second sender).

    Args:
        ticket: The ticket as read now.
        notice_id: The notice delivered.
        channel: The channel.
        accepted: True if the channel accepted it (2xx and the vendor's OK).
        now: When (timezone-aware).
        settings: Retry waits.
        error: What went wrong, if not accepted.
        give_up: Do not retry (the channel refused it for good: a bad
            signature, an unknown channel); the channel is dropped from the
            notice and its status stays ``failed``.

    Returns:
        The ticket (``delivery[channel]`` is ``sent`` or ``failed``; a
        notice every channel accepted is removed) and whether this was the
        first channel to accept the notice.

    """
    require_aware(now, "now")
    notice = next((n for n in ticket.outbox if n.notice_id == notice_id), None)
    if notice is None or channel not in notice.channels:
        return ticket, False
    first = False
    if accepted or give_up:
        remaining = tuple(c for c in notice.channels if c != channel)
        first = accepted and not notice.accepted
        updated = replace(
            notice,
            channels=remaining,
            accepted=(*notice.accepted, channel) if accepted else notice.accepted,
            last_error=notice.last_error if accepted else error,
        )
    else:
        wait = min(
            settings.notice_retry_max_seconds,
            settings.notice_retry_seconds * 2**notice.attempts,
        )
        updated = replace(
            notice,
            attempts=notice.attempts + 1,
            last_error=error,
            due_at=now + timedelta(seconds=wait),
        )
    outbox = tuple(
        updated if n.notice_id == notice_id else n
        for n in ticket.outbox
        if not (n.notice_id == notice_id and not updated.channels)
    )
    status = "sent" if accepted else "failed"
    delivery = {**ticket.delivery, channel: status}
    return replace(ticket, outbox=outbox, delivery=delivery), first


# --- rate limits -------------------------------------------------------------


@dataclass(frozen=True)
class PendingSend:
    """One notice due on one channel, as the sender plans it.

    Attributes:
        ticket_id: The ticket.
        notice: The notice.
        channel: The channel.

    """

    ticket_id: str
    notice: Notice
    channel: str

    @property
    def order(self) -> tuple[int, datetime, str]:
        """Most urgent first, then oldest due, then id (stable)."""
        return (_rank(self.notice.priority), self.notice.due_at, self.notice.notice_id)


@dataclass(frozen=True)
class ChannelPlan:
    """What to send on one channel now.

    Attributes:
        singles: Sent one message each, in this order.
        digest: Sent together as one message (``"N more"``), if any.
        waiting: Left pending for a later round (no slot now).

    """

    singles: tuple[PendingSend, ...] = ()
    digest: tuple[PendingSend, ...] = ()
    waiting: tuple[PendingSend, ...] = ()

    @property
    def messages(self) -> int:
        """Messages this plan sends."""
        return len(self.singles) + (1 if self.digest else 0)


def plan_channel(
    pending: Sequence[PendingSend], free: int, p1_reserve: int = 2
) -> ChannelPlan:
    """Fit the due notices of one channel into the messages it may take now.

    P1 notices may use every free slot; lower priorities leave
    ``p1_reserve`` slots for P1. When the notices outnumber the slots, the
    most urgent go singly and the rest share the last slot as a digest, so
    nothing is dropped and a P1 never waits behind a lower priority.

    Args:
        pending: The channel's due notices, in any order.
        free: Messages the channel may take now (its limit minus what it
            took in the last minute).
        p1_reserve: Slots lower priorities may not use.

    Returns:
        The plan; ``waiting`` holds what has no slot at all.

    """
    items = sorted(pending, key=lambda item: item.order)
    free = max(0, free)
    urgent = [i for i in items if i.notice.priority == Priority.P1]
    low = [i for i in items if i.notice.priority != Priority.P1]
    singles: list[PendingSend] = []
    digest: list[PendingSend] = []
    if urgent:
        if len(urgent) <= free:
            singles.extend(urgent)
        elif free >= 1:
            singles.extend(urgent[: free - 1])
            digest.extend(urgent[free - 1 :])
        else:
            return ChannelPlan(waiting=tuple(items))
    if digest:
        # The P1 digest has the last slot; everything else rides along.
        return ChannelPlan(tuple(singles), tuple([*digest, *low]))
    slots = min(max(0, free - p1_reserve), free - len(singles))
    if len(low) <= slots:
        singles.extend(low)
        return ChannelPlan(tuple(singles))
    if slots < 1:
        return ChannelPlan(tuple(singles), waiting=tuple(low))
    singles.extend(low[: slots - 1])
    return ChannelPlan(tuple(singles), tuple(low[slots - 1 :]))
