"""A ticket's lifecycle: people's actions, delivery records and audit events.

open -> acknowledged -> in_progress -> resolved -> closed, with assign,
transfer, escalate, comment and reopen on the way. Every change returns the
new ticket with the :class:`~monitor.analysis.tickets.model.TicketEvent` that
records who, when and why (see :func:`stamp_event`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from monitor.analysis.tickets.model import (
    ACTIVE_STATUSES,
    STATUSES,
    SYSTEM_ACTOR,
    InvalidTransitionError,
    Review,
    ReviewRequiredError,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketStatus,
    require_aware,
)
from monitor.analysis.tickets.routing import Routing
from monitor.analysis.tickets.sla import DEFAULT_SLA, SlaPolicy, escalate

#: Actions :func:`apply_action` accepts, mapped to the statuses they start from.
ACTION_SOURCES: dict[TicketAction, frozenset[TicketStatus]] = {
    TicketAction.ACKNOWLEDGE: frozenset({TicketStatus.OPEN}),
    TicketAction.START: frozenset({TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED}),
    TicketAction.RESOLVE: frozenset(ACTIVE_STATUSES),
    TicketAction.CLOSE: frozenset({TicketStatus.RESOLVED}),
    TicketAction.REOPEN: frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketAction.ASSIGN: frozenset(ACTIVE_STATUSES | {TicketStatus.RESOLVED}),
    TicketAction.TRANSFER: frozenset(ACTIVE_STATUSES | {TicketStatus.RESOLVED}),
    TicketAction.ESCALATE: frozenset(ACTIVE_STATUSES),
    TicketAction.COMMENT: frozenset(STATUSES),
}
#: The actions people take, in the order the API lists them.
ACTIONS = tuple(ACTION_SOURCES)

#: What ``close`` takes: the review (复盘).
REVIEW_FIELDS = ("root_cause", "resolution", "lessons")
#: Parameters each action takes besides the note.
ACTION_PARAMS: dict[TicketAction, frozenset[str]] = {
    action: frozenset(
        {"owner", "team"}
        if action in {TicketAction.ASSIGN, TicketAction.TRANSFER}
        else REVIEW_FIELDS
        if action == TicketAction.CLOSE
        else ()
    )
    for action in ACTION_SOURCES
}
#: Longest text of one review field (characters).
MAX_REVIEW_CHARS = 4000

#: Open (and reopen) times a ticket keeps for the flapping check.
_MAX_OPENED_TIMES = 32


def stamp_event(
    before: Ticket | None,
    after: Ticket,
    *,
    action: TicketAction,
    actor: str,
    at: datetime,
    note: str,
    details: Mapping[str, Any] | None = None,
) -> tuple[Ticket, TicketEvent]:
    """Stamp the next revision on ``after`` and return it with its event.

    Args:
        before: The ticket before the change; ``None`` when it is created.
        after: The changed ticket (its revision not yet advanced).
        action: What was done.
        actor: Who did it.
        at: When (timezone-aware).
        note: Why.
        details: Extra facts for the event (JSON values).

    Returns:
        ``after`` with ``revision + 1`` and the event ``<ticket_id>#<revision>``.

    """
    after = replace(after, revision=after.revision + 1)
    event = TicketEvent(
        ticket_id=after.ticket_id,
        event_id=f"{after.ticket_id}#{after.revision}",
        at=at,
        actor=actor,
        action=action,
        from_status=before.status if before else None,
        to_status=after.status,
        note=note,
        details=dict(details or {}),
    )
    return after, event


def apply_action(
    ticket: Ticket,
    action: str,
    actor: str,
    now: datetime,
    note: str = "",
    *,
    sla: SlaPolicy = DEFAULT_SLA,
    routing: Routing | None = None,
    review_required: frozenset[str] = frozenset(),
    **params: Any,
) -> tuple[Ticket, TicketEvent]:
    """Apply a person's action to a ticket.

    Args:
        ticket: The ticket as it is now.
        action: One of :data:`ACTIONS`: ``acknowledge`` (open ->
            acknowledged), ``start`` (open/acknowledged -> in_progress),
            ``resolve`` (active -> resolved), ``close`` (resolved -> closed),
            ``reopen`` (resolved/closed -> open; needs a note), ``assign``
            (``owner=``), ``transfer`` (``owner=`` and/or ``team=``), both in
            any status but closed, ``escalate`` (active: one priority level
            up) and ``comment`` (any status; needs a note).
        actor: Who does it.
        now: When (timezone-aware).
        note: Why, in the actor's words.
        sla: Deadlines for a reopened or escalated ticket.
        routing: Teams, for the escalation contact of ``escalate``.
        review_required: Priorities whose ``close`` needs all three review
            fields; a close of another priority may give them.
        **params: ``owner`` and ``team`` for ``assign``/``transfer``;
            ``root_cause``, ``resolution`` and ``lessons`` for ``close``.

    Returns:
        The new ticket and the event that records the change. The input is
        not modified.

    Raises:
        InvalidTransitionError: If the action is unknown, not allowed from
            the ticket's status, or lacks what it needs (a note, an owner).
        InvalidPolicyError: If ``now`` is naive.

    """
    require_aware(now, "now")
    status = ticket.status

    def refuse(reason: str) -> InvalidTransitionError:
        return InvalidTransitionError(ticket.ticket_id, action, status, reason)

    if action not in ACTION_SOURCES:
        raise refuse(f"unknown action; expected one of {', '.join(ACTIONS)}")
    verb = TicketAction(action)
    if status not in ACTION_SOURCES[verb]:
        allowed = ", ".join(s for s in STATUSES if s in ACTION_SOURCES[verb])
        raise refuse(f"{verb} is only allowed from {allowed}")
    takes_people = verb in {TicketAction.ASSIGN, TicketAction.TRANSFER}
    unexpected = set(params) - ACTION_PARAMS[verb]
    if unexpected:
        raise refuse(f"unexpected parameters {sorted(unexpected)}")
    details: dict[str, Any] = {}
    if verb == TicketAction.ACKNOWLEDGE:
        new = replace(ticket, status=TicketStatus.ACKNOWLEDGED, acknowledged_at=now)
    elif verb == TicketAction.START:
        new = replace(
            ticket,
            status=TicketStatus.IN_PROGRESS,
            started_at=now,
            acknowledged_at=ticket.acknowledged_at or now,
        )
    elif verb == TicketAction.RESOLVE:
        new = replace(ticket, status=TicketStatus.RESOLVED, resolved_at=now)
    elif verb == TicketAction.CLOSE:
        review = _review(ticket, actor, now, params, review_required)
        new = replace(ticket, status=TicketStatus.CLOSED, closed_at=now)
        if review is not None:
            new = replace(new, review=review)
            details.update(
                root_cause=review.root_cause,
                resolution=review.resolution,
                lessons=review.lessons,
            )
    elif verb == TicketAction.REOPEN:
        if not note.strip():
            raise refuse("a person reopening a ticket must say why (note)")
        new = reopen(ticket, now, sla)
        details["reopen_count"] = new.reopen_count
    elif takes_people:
        owner, team = params.get("owner"), params.get("team")
        if verb == TicketAction.ASSIGN and not owner:
            raise refuse("assign needs owner=")
        if verb == TicketAction.TRANSFER and not (owner or team):
            raise refuse("transfer needs owner= and/or team=")
        if owner == ticket.owner and team in (None, ticket.team):
            raise refuse(f"the ticket is already with {owner}")
        new = replace(ticket, owner=owner, team=team or ticket.team)
        details.update(
            from_owner=ticket.owner,
            to_owner=new.owner,
            from_team=ticket.team,
            to_team=new.team,
        )
    elif verb == TicketAction.ESCALATE:
        new, details = escalate(ticket, now, sla, routing, reset=("ack", "resolve"))
    else:
        if not note.strip():
            raise refuse("a comment needs a note")
        new = ticket
    return stamp_event(
        ticket, new, action=verb, actor=actor, at=now, note=note, details=details
    )


def _review(
    ticket: Ticket,
    actor: str,
    now: datetime,
    params: Mapping[str, Any],
    required: frozenset[str],
) -> Review | None:
    """Return the review a ``close`` gives, or refuse one that lacks a part.

    Raises:
        ReviewRequiredError: A part is missing and the priority needs a
            review, or only some parts are given.

    """
    given = {
        name: str(params.get(name) or "").strip()[:MAX_REVIEW_CHARS]
        for name in REVIEW_FIELDS
    }
    missing = [name for name, text in given.items() if not text]
    if not missing:
        return Review(**given, author=actor, at=now)
    if ticket.priority in required:
        reason = (
            f"closing a {ticket.priority} ticket needs a review: "
            f"{', '.join(missing)} missing"
        )
    elif len(missing) < len(REVIEW_FIELDS):
        reason = f"a review needs all of {', '.join(REVIEW_FIELDS)}"
    else:
        return None
    raise ReviewRequiredError(ticket.ticket_id, "close", ticket.status, reason)


def reopen(ticket: Ticket, now: datetime, sla: SlaPolicy) -> Ticket:
    """Return a resolved or closed ticket open again from ``now``.

    Its deadlines restart for its priority, and ``now`` joins its open times
    (the flapping check counts them). No new revision: the caller records
    the event.
    """
    ack_due, resolve_due = sla.dues(ticket.priority, now)
    return replace(
        ticket,
        status=TicketStatus.OPEN,
        opened_at=now,
        acknowledged_at=None,
        started_at=None,
        resolved_at=None,
        closed_at=None,
        ack_due=ack_due,
        resolve_due=resolve_due,
        reopen_count=ticket.reopen_count + 1,
        opened_times=(*ticket.opened_times, now)[-_MAX_OPENED_TIMES:],
    )


def record_delivery(
    ticket: Ticket, channel: str, status: str, now: datetime, note: str = ""
) -> tuple[Ticket, TicketEvent]:
    """Record how a notification on one channel went.

    Args:
        ticket: The ticket notified about.
        channel: Channel name.
        status: Free-form status such as ``sent``, ``failed``, ``retrying``.
        now: When (timezone-aware).
        note: Error text or similar.

    Returns:
        The ticket with ``delivery[channel] = status`` and the event.

    """
    require_aware(now, "now")
    delivery = {**ticket.delivery, channel: status}
    return stamp_event(
        ticket,
        replace(ticket, delivery=delivery),
        action=TicketAction.DELIVERY,
        actor=SYSTEM_ACTOR,
        at=now,
        note=note,
        details={"channel": channel, "status": status},
    )
