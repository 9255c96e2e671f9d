"""Deadlines per priority, the ones a ticket missed, and escalation.

:func:`check_sla` only finds missed deadlines; handling them (escalating once
per deadline) is :meth:`~monitor.analysis.tickets.policy.TicketPolicy.enforce_sla`,
built on :func:`escalate`, which a person's ``escalate`` action uses too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from monitor.analysis.tickets.model import (
    PRIORITIES,
    InvalidPolicyError,
    Priority,
    Ticket,
    TicketStatus,
    require_aware,
)
from monitor.analysis.tickets.priority import raise_priority
from monitor.analysis.tickets.routing import Routing


def _default_ack() -> dict[Priority, timedelta]:
    return {
        Priority.P1: timedelta(minutes=5),
        Priority.P2: timedelta(minutes=15),
        Priority.P3: timedelta(hours=1),
        Priority.P4: timedelta(hours=4),
    }


def _default_resolve() -> dict[Priority, timedelta]:
    return {
        Priority.P1: timedelta(hours=1),
        Priority.P2: timedelta(hours=4),
        Priority.P3: timedelta(hours=24),
        Priority.P4: timedelta(hours=72),
    }


@dataclass(frozen=True)
class SlaPolicy:
    """Acknowledge and resolve deadlines per priority.

    Attributes:
        ack: Time from opening to acknowledgement, per priority.
        resolve: Time from opening to resolution, per priority.

    """

    ack: Mapping[Priority, timedelta] = field(default_factory=_default_ack)
    resolve: Mapping[Priority, timedelta] = field(default_factory=_default_resolve)

    def __post_init__(self) -> None:
        for name, table in (("ack", self.ack), ("resolve", self.resolve)):
            if set(table) != set(PRIORITIES):
                names = tuple(str(priority) for priority in PRIORITIES)
                raise InvalidPolicyError(f"SLA {name} needs exactly {names}")
            if any(value <= timedelta(0) for value in table.values()):
                raise InvalidPolicyError(f"SLA {name} durations must be > 0")

    def dues(self, priority: Priority, start: datetime) -> tuple[datetime, datetime]:
        """Return ``(ack_due, resolve_due)`` for a ticket opened at ``start``."""
        return start + self.ack[priority], start + self.resolve[priority]


DEFAULT_SLA = SlaPolicy()


@dataclass(frozen=True)
class SlaBreach:
    """A deadline a ticket missed.

    Attributes:
        ticket_id: The ticket.
        kind: ``ack`` or ``resolve``.
        due: The missed deadline.
        key: ``"<kind>@<due iso>"``; a breach with the same key is handled once.

    """

    ticket_id: str
    kind: str
    due: datetime
    key: str


def check_sla(ticket: Ticket, now: datetime) -> list[SlaBreach]:
    """Return the deadlines a ticket has missed at ``now`` and not yet handled.

    The acknowledge deadline counts while the ticket is ``open``; the resolve
    deadline while it is active. A deadline is missed once ``now`` is past
    it (strictly). Pure: handling a breach is
    :meth:`~monitor.analysis.tickets.policy.TicketPolicy.enforce_sla`.
    """
    require_aware(now, "now")
    breaches = []
    deadlines = []
    if ticket.status == TicketStatus.OPEN:
        deadlines.append(("ack", ticket.ack_due))
    if ticket.is_active:
        deadlines.append(("resolve", ticket.resolve_due))
    for kind, due in deadlines:
        key = f"{kind}@{due.isoformat()}"
        if now > due and key not in ticket.sla_breaches:
            breaches.append(SlaBreach(ticket.ticket_id, kind, due, key))
    return breaches


def escalate(
    ticket: Ticket,
    now: datetime,
    sla: SlaPolicy,
    routing: Routing | None,
    *,
    reset: tuple[str, ...],
) -> tuple[Ticket, dict[str, Any]]:
    """Raise a ticket one priority level and one escalation level.

    Args:
        ticket: The ticket as it is now.
        now: When (timezone-aware).
        sla: Deadlines of the new priority.
        routing: Teams, for the contact of the new escalation level; without
            it the ticket keeps its contact.
        reset: Deadlines (``ack``, ``resolve``) that restart at ``now`` with
            the new priority, so the next contact gets a full period; the
            others only tighten.

    Returns:
        The escalated ticket (no new revision: the caller records the event)
        and the event details (priorities, level, contact).

    """
    priority = raise_priority(ticket.priority)
    level = ticket.escalation_level + 1
    team = routing.teams.get(ticket.team) if routing else None
    contact = team.escalation_contact(level) if team else ticket.escalation_contact
    ack_due, resolve_due = sla.dues(priority, now)
    new = replace(
        ticket,
        priority=priority,
        escalation_level=level,
        escalation_contact=contact,
        ack_due=ack_due if "ack" in reset else min(ticket.ack_due, ack_due),
        resolve_due=(
            resolve_due if "resolve" in reset else min(ticket.resolve_due, resolve_due)
        ),
    )
    if priority != ticket.priority:
        new = replace(
            new,
            priority_reason=f"{priority}: escalated from {ticket.priority} "
            f"(level {level}); was {ticket.priority_reason}",
        )
    details = {
        "from_priority": str(ticket.priority),
        "to_priority": str(priority),
        "escalation_level": level,
        "escalation_contact": contact,
    }
    return new, details
