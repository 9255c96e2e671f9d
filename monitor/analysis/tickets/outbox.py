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

Which clock ``group_interval`` and ``repeat_interval`` are measured on is
``TicketSettings.notice_clock`` (:class:`NoticeClock`):

- ``event`` (the default): the signals' event time
  (:attr:`~monitor.analysis.tickets.model.Trigger.event_time`). An update is
  due at once only when its event time is ``group_interval`` past the event
  time of the incident's previous notice
  (:attr:`~monitor.analysis.tickets.model.Ticket.notice_event_time`);
  otherwise it waits as the pending update until a later signal's event time
  gets there, or, if none comes, until ``group_interval`` of wall clock after
  the previous notice (so a quiet incident's last change is not held back for
  ever). An incident still ``open`` is told again when a signal arrives
  ``repeat_interval`` of event time after that notice. A replay of six hours
  of posts in a minute is then notified as the incident happened, not as it
  was processed. ``group_wait`` stays on the wall clock: it only gathers
  signals arriving together.
- ``wall``: the decision time, as before: a backlog processed in seconds
  folds nearly everything into one update.

A change that tells nothing new (a signal that only repeats a rule the
incident already told, with another value) queues no notice: it folds into
the waiting notice, or is held on the ticket (``held_updates``) and counted
in the next notice's ``folded``, so nothing is lost.

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
from enum import StrEnum
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
_AT_ONCE = frozenset(
    {
        NoticeKind.ACKNOWLEDGED,
        NoticeKind.RESOLVED,
        NoticeKind.REPEAT,
        NoticeKind.ASSIGNED,
    }
)
#: Kinds that never fold into a waiting notice (an assignment's personal
#: notice takes none in either).
_ALONE = frozenset({NoticeKind.ACKNOWLEDGED, NoticeKind.RESOLVED, NoticeKind.ASSIGNED})
#: A personal notice's channel (``@<person>/<via>``) starts with this.
PERSONAL_PREFIX = "@"
_URGENT = frozenset({Priority.P1, Priority.P2})
#: Kinds that open an incident (to its channels).
_OPENING = frozenset({NoticeKind.OPENED, NoticeKind.REOPENED})


class NoticeClock(StrEnum):
    """Which time ``group_interval`` and ``repeat_interval`` are measured on."""

    #: The signals' event time (the crossing post's ``published_at``).
    EVENT = "event"
    #: The decision time (wall clock).
    WALL = "wall"


def is_personal(channel: str) -> bool:
    """Return True for a personal notice's channel name (``@<person>/<via>``)."""
    return channel.startswith(PERSONAL_PREFIX)


def _rank(priority: Priority) -> int:
    return PRIORITIES.index(priority)


def _more_urgent(a: Priority, b: Priority) -> Priority:
    return a if _rank(a) <= _rank(b) else b


def _event_clock(settings: TicketSettings, event_time: datetime | None) -> bool:
    return event_time is not None and settings.notice_clock == NoticeClock.EVENT


def _is_update(ticket: Ticket, kind: NoticeKind) -> bool:
    """Return True if group timing applies (not an opening, not urgent)."""
    if kind in _AT_ONCE or kind in _OPENING:
        return False
    return not (kind == NoticeKind.ESCALATED and ticket.priority in _URGENT)


def event_advanced(
    ticket: Ticket, event_time: datetime, settings: TicketSettings
) -> bool:
    """Return True if ``event_time`` is ``group_interval`` past the last notice's.

    Also True for an incident no signal notice has told yet.
    """
    if ticket.notice_event_time is None:
        return True
    interval = timedelta(seconds=settings.group_interval_seconds)
    return event_time >= ticket.notice_event_time + interval


def notice_due(
    ticket: Ticket,
    kind: NoticeKind,
    now: datetime,
    settings: TicketSettings,
    event_time: datetime | None = None,
) -> datetime:
    """When a new notice of ``kind`` about ``ticket`` may go out.

    Args:
        ticket: The ticket after the change (its priority decides).
        kind: What the notice tells of.
        now: Decision time (timezone-aware).
        settings: The group timings and the notice clock.
        event_time: Event time of the signal it tells of, if a signal
            caused it (people's actions and SLA sweeps have none; their
            notices are timed on the wall clock).

    Returns:
        ``now`` for P1/P2 openings and escalations and for people's actions;
        ``now + group_wait`` for other openings; for updates, ``now`` if the
        event clock is on and ``event_time`` is ``group_interval`` past the
        incident's last notified event time, else the later of ``now`` and
        the previous notice plus ``group_interval`` (wall clock: on the event
        clock, only the bound for an incident whose signals stopped).

    """
    urgent = ticket.priority in _URGENT
    if kind in _AT_ONCE:
        return now
    if kind in (NoticeKind.OPENED, NoticeKind.REOPENED, NoticeKind.ESCALATED):
        if urgent:
            return now
        if kind != NoticeKind.ESCALATED:
            return now + timedelta(seconds=settings.group_wait_seconds)
    if (
        event_time is not None
        and _event_clock(settings, event_time)
        and event_advanced(ticket, event_time, settings)
    ):
        return now
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
    event_time: datetime | None = None,
) -> Ticket:
    """Put a notice in the ticket's outbox, or fold it into a waiting one.

    A notice no channel has accepted yet takes the new change in (its
    ``folded`` count grows, its priority and kind follow the more urgent
    one, and it becomes due sooner if the new change is more urgent), so a
    burst of changes makes one message. Otherwise a new notice is added,
    with id ``<ticket_id>#n<revision>``; it counts the changes held on the
    ticket since the previous notice (:func:`hold_update`) in its
    ``folded``.

    Args:
        ticket: The ticket after the change (revision already stamped).
        kind: What the notice tells of.
        now: Decision time (timezone-aware).
        channels: Channels to tell; none queues nothing.
        settings: The group timings and the notice clock.
        event_id: The event it tells of.
        crossing_received_at: ``posts`` timestamp of the crossing post, for
            the latency histogram.
        event_time: Event time of the signal it tells of, if any (see
            :func:`notice_due`).

    Returns:
        The ticket with its outbox (``last_notice_at``,
        ``notice_event_time`` and ``held_updates``) updated.

    """
    require_aware(now, "now")
    require_aware(event_time, "event_time")
    channels = tuple(dict.fromkeys(channels))
    if not channels:
        return ticket
    joined: tuple[str, ...] = ()
    unsent = any(
        not n.accepted and n.attempts == 0 and n.kind != NoticeKind.ASSIGNED
        for n in ticket.outbox
    )
    if not unsent and kind in (
        NoticeKind.UPDATED,
        NoticeKind.ESCALATED,
        NoticeKind.REPEAT,
    ):
        # A channel that joined with a new signal's rule has heard nothing of
        # the incident yet: it gets its own opening notice now, not an update
        # after group_interval (and the others' update does not hurry).
        # A personal target (``@person/via``) gets the notice as it is.
        told = set(ticket.delivery) | {c for n in ticket.outbox for c in n.channels}
        joined = tuple(c for c in channels if c not in told and not is_personal(c))
        channels = tuple(c for c in channels if c in told or is_personal(c))
    if channels:
        ticket = _queue(
            ticket,
            kind,
            now,
            channels,
            settings,
            event_id,
            crossing_received_at,
            event_time=event_time,
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
            event_time=event_time,
        )
    return ticket


def hold_update(
    ticket: Ticket,
    *,
    now: datetime,
    settings: TicketSettings,
    event_time: datetime | None = None,
) -> Ticket:
    """Count a change that tells nothing new in the next notice.

    It folds into the notice still waiting in the outbox if there is one,
    else it is held on the ticket (``held_updates``) until the next notice
    is queued: a signal that only repeats a rule already told never makes a
    notice of its own, and is never lost from the count either. On the
    event clock a signal whose event time is ``group_interval`` past the
    last notice's sends the waiting update now (its interval is over).

    Args:
        ticket: The ticket after the change.
        now: Decision time (timezone-aware).
        settings: The group timings and the notice clock.
        event_time: Event time of the signal, if a signal caused it.

    Returns:
        The ticket with the change counted.

    """
    require_aware(now, "now")
    require_aware(event_time, "event_time")
    waiting = [
        n
        for n in ticket.outbox
        if not n.accepted and n.attempts == 0 and n.kind != NoticeKind.ASSIGNED
    ]
    if not waiting:
        return replace(ticket, held_updates=ticket.held_updates + 1)
    target = waiting[-1]
    merged = replace(target, folded=target.folded + 1 + ticket.held_updates)
    last_notice_at, notice_event_time = ticket.last_notice_at, ticket.notice_event_time
    if (
        event_time is not None
        and _event_clock(settings, event_time)
        and target.due_at > now
        and event_advanced(ticket, event_time, settings)
    ):
        merged = replace(merged, due_at=now)
        last_notice_at, notice_event_time = _clock_after(
            ticket,
            NoticeKind.UPDATED,
            now,
            now,
            settings,
            event_time,
            replaces=target.due_at,
        )
    outbox = tuple(merged if n is target else n for n in ticket.outbox)
    return replace(
        ticket,
        outbox=outbox,
        held_updates=0,
        last_notice_at=last_notice_at,
        notice_event_time=notice_event_time,
    )


def _queue(
    ticket: Ticket,
    kind: NoticeKind,
    now: datetime,
    channels: tuple[str, ...],
    settings: TicketSettings,
    event_id: str | None,
    crossing_received_at: datetime | None,
    suffix: str = "",
    event_time: datetime | None = None,
) -> Ticket:
    """Queue one notice; ``suffix`` marks one that must not fold (own id)."""
    due = notice_due(ticket, kind, now, settings, event_time)
    waiting = [n for n in ticket.outbox if not n.accepted and n.attempts == 0]
    alone = suffix or kind in _ALONE
    # The held changes go with the notice the incident's channels get, not
    # with a joining channel's opening (it has heard nothing to add to).
    held = 0 if suffix else ticket.held_updates
    # A change folds into the latest waiting notice unless either is one
    # that goes alone (an assignment's personal notice).
    foldable = [n for n in waiting if n.kind != NoticeKind.ASSIGNED]
    if (foldable and not alone) or len(ticket.outbox) >= OUTBOX_LIMIT:
        target = foldable[-1] if foldable and not alone else ticket.outbox[-1]
        # The change goes with the waiting notice, when that one goes.
        last_notice_at, notice_event_time = _clock_after(
            ticket,
            kind,
            min(target.due_at, due),
            now,
            settings,
            event_time,
            replaces=target.due_at,
        )
        merged_kind = target.kind
        if kind == NoticeKind.ESCALATED or target.kind == NoticeKind.UPDATED:
            merged_kind = kind if target.kind == NoticeKind.UPDATED else target.kind
        merged = replace(
            target,
            kind=merged_kind,
            priority=_more_urgent(target.priority, ticket.priority),
            due_at=min(target.due_at, due),
            channels=tuple(dict.fromkeys((*target.channels, *channels))),
            folded=target.folded + 1 + held,
            crossing_received_at=target.crossing_received_at or crossing_received_at,
        )
        outbox = tuple(merged if n is target else n for n in ticket.outbox)
        return replace(
            ticket,
            outbox=outbox,
            held_updates=ticket.held_updates - held,
            last_notice_at=last_notice_at,
            notice_event_time=notice_event_time,
        )
    last_notice_at, notice_event_time = _clock_after(
        ticket, kind, due, now, settings, event_time
    )
    notice = Notice(
        notice_id=f"{ticket.ticket_id}#n{ticket.revision}{suffix}",
        kind=kind,
        priority=ticket.priority,
        created_at=now,
        due_at=due,
        channels=channels,
        event_id=event_id,
        folded=held,
        crossing_received_at=crossing_received_at,
    )
    return replace(
        ticket,
        outbox=(*ticket.outbox, notice),
        notices=ticket.notices + 1,
        held_updates=ticket.held_updates - held,
        last_notice_at=last_notice_at,
        notice_event_time=notice_event_time,
    )


def _clock_after(
    ticket: Ticket,
    kind: NoticeKind,
    due: datetime,
    now: datetime,
    settings: TicketSettings,
    event_time: datetime | None,
    replaces: datetime | None = None,
) -> tuple[datetime, datetime | None]:
    """Return ``last_notice_at`` and ``notice_event_time`` once a notice is queued.

    ``due`` is when the change goes out: the new notice's due time, or that
    of the waiting notice it folds into (``replaces`` is the waiting one's
    due time before), so folds never push the next update further out. The
    event time moves on only when the notice tells the signal now (an
    opening, an urgent escalation, an update ``group_interval`` of event time
    after the last one): an update left pending does not restart the
    interval. On the event clock a notice made due now also restarts the
    wall-clock bound.
    """
    told_now = event_time is not None and (
        not _is_update(ticket, kind)
        or (_event_clock(settings, event_time) and due <= now)
    )
    notice_event_time = ticket.notice_event_time
    if told_now:
        assert event_time is not None
        notice_event_time = (
            event_time
            if notice_event_time is None
            else max(notice_event_time, event_time)
        )
    last = ticket.last_notice_at
    if replaces is not None and last == replaces:
        last = None  # the waiting notice was the latest; it goes at ``due`` now
    if last is None or (told_now and _event_clock(settings, event_time)):
        last_notice_at = due
    else:
        last_notice_at = max(last, due)
    return last_notice_at, notice_event_time


def repeat_due(ticket: Ticket, now: datetime, settings: TicketSettings) -> bool:
    """Return True if an ``open`` ticket has gone ``repeat_interval`` without a notice.

    This is the periodic (wall-clock) check. Nothing is due while a notice is
    still waiting in the outbox. On the event clock a ticket a signal notice
    has told (``notice_event_time`` set) is never due here: it is told again
    when a signal arrives ``repeat_interval`` of event time later
    (:func:`repeat_due_at`), so a replay does not repeat by processing time.
    """
    if ticket.status != TicketStatus.OPEN or ticket.outbox:
        return False
    if (
        settings.notice_clock == NoticeClock.EVENT
        and ticket.notice_event_time is not None
    ):
        return False
    since = ticket.last_notice_at or ticket.opened_at
    return now - since >= timedelta(seconds=settings.repeat_interval_seconds)


def repeat_due_at(
    ticket: Ticket, event_time: datetime, settings: TicketSettings
) -> bool:
    """Return True if a signal at ``event_time`` should tell an ``open`` ticket again.

    On the event clock only: the signal's event time is ``repeat_interval``
    past the incident's last notified event time.
    """
    if (
        settings.notice_clock != NoticeClock.EVENT
        or ticket.status != TicketStatus.OPEN
        or ticket.notice_event_time is None
    ):
        return False
    interval = timedelta(seconds=settings.repeat_interval_seconds)
    return event_time - ticket.notice_event_time >= interval


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
    reached: Sequence[str] = (),
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
        reached: Recipients the channel reached though it failed (the
            notifier's digests); kept on the notice for the next round.

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
            reached=tuple(dict.fromkeys((*notice.reached, *reached))),
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
