"""Alert tickets (预警工单): the pure policy that turns triggers into tickets.

A rule that fires produces a :class:`~monitor.analysis.tickets.model.Trigger`.
:class:`TicketPolicy` decides, from the tickets that already exist, whether the
trigger opens a new ticket, folds into the open one for the same incident,
reopens a recently resolved one, is held because the incident flaps, or is
suppressed by a silence or a maintenance window. People then move a ticket
through its lifecycle with :meth:`TicketPolicy.apply_action`, and
:meth:`TicketPolicy.enforce_sla` escalates the deadlines it missed.

Everything here is a pure function of its arguments: time is always passed in
as ``now`` (timezone-aware), ids are derived deterministically (or come from
an injected factory), and every change returns a new frozen ticket together
with the :class:`~monitor.analysis.tickets.model.TicketEvent` that records
who, when and why. Priorities are scored in
:mod:`~monitor.analysis.tickets.priority`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from monitor.analysis.tickets.evidence import merge_evidence
from monitor.analysis.tickets.lifecycle import apply_action, reopen, stamp_event
from monitor.analysis.tickets.model import (
    SYSTEM_ACTOR,
    AlertRule,
    InvalidPolicyError,
    Observation,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketStatus,
    Trigger,
    default_ticket_id,
    require_aware,
)
from monitor.analysis.tickets.priority import (
    compute_priority,
    format_number,
    is_more_urgent,
    raise_priority,
)
from monitor.analysis.tickets.routing import Routing, choose_owner
from monitor.analysis.tickets.silences import MaintenanceWindow, Silence
from monitor.analysis.tickets.sla import DEFAULT_SLA, SlaPolicy, check_sla, escalate


class Outcome(StrEnum):
    """What :meth:`TicketPolicy.decide` made of a trigger."""

    OPENED = "opened"
    FOLDED = "folded"
    REOPENED = "reopened"
    HELD = "held"
    SUPPRESSED = "suppressed"
    DUPLICATE = "duplicate"


# The members under their old names, typed as the text they always were.
OPENED: str = Outcome.OPENED
FOLDED: str = Outcome.FOLDED
REOPENED: str = Outcome.REOPENED
HELD: str = Outcome.HELD
SUPPRESSED: str = Outcome.SUPPRESSED
DUPLICATE: str = Outcome.DUPLICATE


@dataclass(frozen=True)
class TicketSettings:
    """Knobs of :class:`TicketPolicy`.

    Attributes:
        cooldown: A re-fire this soon after a resolve reopens the ticket;
            later ones open a new ticket.
        flap_max_opens: A fingerprint may open (or reopen) this many times
            within ``flap_window``; a further re-fire is held on the latest
            ticket instead (>= 1).
        flap_window: Look-back of the flapping check.
        growth_ratio: A folded trigger whose value is at least ``1 +
            growth_ratio`` times the value at opening (or at the last raise)
            raises the priority one level (> 0).
        escalate_every: Every this many occurrences raise the priority one
            level (>= 2).
        evidence_limit: Evidence posts kept per ticket (>= 1).
        history_limit: Observations kept per ticket (>= 1).
        keyword_limit: Keywords kept per ticket (>= 1).

    """

    cooldown: timedelta = timedelta(minutes=30)
    flap_max_opens: int = 3
    flap_window: timedelta = timedelta(hours=2)
    growth_ratio: float = 0.5
    escalate_every: int = 10
    evidence_limit: int = 10
    history_limit: int = 48
    keyword_limit: int = 20

    def __post_init__(self) -> None:
        problems = []
        if self.cooldown < timedelta(0):
            problems.append("cooldown must be >= 0")
        if self.flap_max_opens < 1:
            problems.append("flap_max_opens must be >= 1")
        if self.flap_window <= timedelta(0):
            problems.append("flap_window must be > 0")
        if not self.growth_ratio > 0:
            problems.append("growth_ratio must be > 0")
        if self.escalate_every < 2:
            problems.append("escalate_every must be >= 2")
        if min(self.evidence_limit, self.history_limit, self.keyword_limit) < 1:
            problems.append("evidence, history and keyword limits must be >= 1")
        if problems:
            raise InvalidPolicyError("; ".join(problems))


@dataclass(frozen=True)
class TicketDecision:
    """What :meth:`TicketPolicy.decide` made of a trigger.

    Attributes:
        outcome: ``opened``, ``folded``, ``reopened``, ``held``,
            ``suppressed`` or ``duplicate``.
        reason: Why, e.g. ``"suppressed by silence S-1 (...)"``.
        ticket: The new or changed ticket; ``None`` when suppressed, and the
            unchanged ticket for a duplicate.
        event: The audit event, ``None`` when nothing changed.
        notify: True if people should hear about it (opened, reopened, or a
            folded trigger that raised the priority).

    """

    outcome: Outcome
    reason: str
    ticket: Ticket | None = None
    event: TicketEvent | None = None
    notify: bool = False


@dataclass(frozen=True)
class TicketPolicy:
    """Decides what a trigger does to the tickets; see the module docstring.

    Attributes:
        rules: Rules by ``(topic, rule name)``; used for priority floors and
            channels. A trigger of an unknown rule still gets a ticket.
        routing: Topic -> team -> owner.
        sla: Deadlines per priority.
        settings: Cool-down, flapping, growth and size limits.
        silences: Active and future silences.
        maintenance: Maintenance windows.
        id_factory: ``(fingerprint, sequence) -> ticket id``.

    """

    rules: Mapping[tuple[str, str], AlertRule] = field(default_factory=dict)
    routing: Routing = field(default_factory=lambda: Routing(teams={}))
    sla: SlaPolicy = DEFAULT_SLA
    settings: TicketSettings = field(default_factory=TicketSettings)
    silences: tuple[Silence, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    id_factory: Callable[[str, int], str] = default_ticket_id

    def decide(
        self, trigger: Trigger, tickets: Iterable[Ticket], now: datetime
    ) -> TicketDecision:
        """Decide what a trigger does, given the known tickets.

        In order: a maintenance window covering the topic at the trigger's
        window (event time: the posts were published during maintenance,
        however late they are processed), or a matching silence (wall
        clock), suppresses it. Otherwise it folds into the fingerprint's
        active ticket (a window already folded is a duplicate). Otherwise,
        if the fingerprint flaps (``flap_max_opens`` opens within
        ``flap_window``) it is held on the latest resolved ticket; a resolved
        ticket within the cool-down is reopened; anything else (none,
        resolved long ago, closed) opens a new ticket.

        Args:
            trigger: What fired.
            tickets: Known tickets: every active one and the recent ones per
                fingerprint (at least the latest), plus the team's tickets
                for routing.
            now: Decision time (timezone-aware); silences are checked at
                this instant, maintenance at the trigger's window start.

        Returns:
            The decision; nothing is modified.

        """
        require_aware(now, "now")
        tickets = list(tickets)
        for window in self.maintenance:
            if window.is_active(trigger.topic, trigger.window_start):
                return TicketDecision(
                    Outcome.SUPPRESSED,
                    f"suppressed by maintenance window {window.name}",
                )
        for silence in self.silences:
            if silence.matches(trigger, now):
                return TicketDecision(
                    Outcome.SUPPRESSED,
                    f"suppressed by silence {silence.silence_id} "
                    f"({silence.author}: {silence.reason}, until "
                    f"{silence.expires_at.isoformat()})",
                )
        mine = sorted(
            (t for t in tickets if t.fingerprint == trigger.fingerprint),
            key=lambda t: t.sequence,
        )
        active = [t for t in mine if t.is_active]
        if active:
            return self._fold(active[-1], trigger, now)
        latest = mine[-1] if mine else None
        if latest is not None and latest.status == TicketStatus.RESOLVED:
            opens = self._recent_opens(mine, now)
            if opens >= self.settings.flap_max_opens:
                return self._hold(latest, trigger, now, opens)
            assert latest.resolved_at is not None
            if now - latest.resolved_at <= self.settings.cooldown:
                return self._reopen(latest, trigger, now)
        sequence = max((t.sequence for t in mine), default=0) + 1
        return self._open(trigger, tickets, now, sequence, latest)

    def enforce_sla(
        self, ticket: Ticket, now: datetime
    ) -> tuple[Ticket, list[TicketEvent]]:
        """Escalate a ticket once for each deadline it newly missed.

        Each breach raises the priority one level (capped at ``P1``), adds an
        escalation level with the team's next contact, restarts the missed
        deadline for the new priority and records the deadline as handled,
        so calling this again at a later ``now`` does nothing more until the
        new deadline passes too.

        Returns:
            The ticket (unchanged if nothing was missed) and one event per
            breach, action ``sla_breach``.

        """
        events = []
        for breach in check_sla(ticket, now):
            escalated, details = escalate(
                ticket, now, self.sla, self.routing, reset=(breach.kind,)
            )
            escalated = replace(
                escalated, sla_breaches=ticket.sla_breaches | {breach.key}
            )
            details.update(deadline=breach.kind, due=breach.due.isoformat())
            ticket, event = stamp_event(
                ticket,
                escalated,
                action=TicketAction.SLA_BREACH,
                actor=SYSTEM_ACTOR,
                at=now,
                note=f"{breach.kind} deadline {breach.due.isoformat()} missed",
                details=details,
            )
            events.append(event)
        return ticket, events

    def apply_action(
        self,
        ticket: Ticket,
        action: str,
        actor: str,
        now: datetime,
        note: str = "",
        **params: Any,
    ) -> tuple[Ticket, TicketEvent]:
        """:func:`apply_action` with this policy's SLA and routing."""
        return apply_action(
            ticket,
            action,
            actor,
            now,
            note,
            sla=self.sla,
            routing=self.routing,
            **params,
        )

    # -- the outcomes ----------------------------------------------------------

    def _rule(self, trigger: Trigger) -> AlertRule | None:
        return self.rules.get((trigger.topic, trigger.rule))

    def _recent_opens(self, tickets: Sequence[Ticket], now: datetime) -> int:
        since = now - self.settings.flap_window
        return sum(
            1 for t in tickets for moment in t.opened_times if since < moment <= now
        )

    def _observe(self, ticket: Ticket, trigger: Trigger) -> Ticket:
        """Fold a trigger's window, evidence and keywords into a ticket."""
        observation = Observation(
            trigger.window_start,
            trigger.window_end,
            trigger.observed_value,
            trigger.expected_value,
        )
        limits = self.settings
        keywords = tuple(dict.fromkeys((*trigger.keywords, *ticket.keywords)))
        return replace(
            ticket,
            occurrences=ticket.occurrences + 1,
            first_seen=min(ticket.first_seen, trigger.window_start),
            last_seen=max(ticket.last_seen, trigger.window_end),
            peak_value=max(ticket.peak_value, trigger.observed_value),
            expected_value=(
                trigger.expected_value
                if trigger.expected_value is not None
                else ticket.expected_value
            ),
            evidence=merge_evidence(
                ticket.evidence, trigger.evidence, limits.evidence_limit
            ),
            keywords=keywords[: limits.keyword_limit],
            history=(*ticket.history, observation)[-limits.history_limit :],
        )

    def _fold(self, ticket: Ticket, trigger: Trigger, now: datetime) -> TicketDecision:
        if any(
            seen.window_start == trigger.window_start
            and seen.window_end == trigger.window_end
            for seen in ticket.history
        ):
            return TicketDecision(
                Outcome.DUPLICATE,
                f"window {trigger.window_start.isoformat()} already on "
                f"{ticket.ticket_id}",
                ticket=ticket,
            )
        new = self._observe(ticket, trigger)
        why = []
        if trigger.observed_value >= ticket.growth_reference * (
            1 + self.settings.growth_ratio
        ):
            growth = trigger.observed_value / ticket.growth_reference - 1
            why.append(
                f"value grew {growth:.0%} to "
                f"{format_number(trigger.observed_value)} from "
                f"{format_number(ticket.growth_reference)}"
            )
            new = replace(new, growth_reference=trigger.observed_value)
        if new.occurrences % self.settings.escalate_every == 0:
            why.append(f"{new.occurrences} occurrences")
        priority = raise_priority(ticket.priority) if why else ticket.priority
        computed, computed_reason = compute_priority(trigger, self._rule(trigger))
        if is_more_urgent(computed, priority):
            priority = computed
            why.append(f"this window alone scores {computed_reason}")
        details: dict[str, Any] = {
            "occurrences": new.occurrences,
            "observed_value": trigger.observed_value,
            "window_start": trigger.window_start.isoformat(),
        }
        raised = priority != ticket.priority
        if raised:
            ack_due, resolve_due = self.sla.dues(priority, now)
            new = replace(
                new,
                priority=priority,
                priority_reason=f"{priority}: raised from {ticket.priority}: "
                + "; ".join(why)
                + f" (opened as {ticket.priority_reason})",
                ack_due=min(ticket.ack_due, ack_due),
                resolve_due=min(ticket.resolve_due, resolve_due),
            )
            details.update(
                from_priority=str(ticket.priority), to_priority=str(priority)
            )
        note = f"occurrence {new.occurrences}" + (
            f"; priority {ticket.priority} -> {priority}: " + "; ".join(why)
            if raised
            else ""
        )
        new, event = stamp_event(
            ticket,
            new,
            action=TicketAction.FOLD,
            actor=SYSTEM_ACTOR,
            at=now,
            note=note,
            details=details,
        )
        return TicketDecision(
            Outcome.FOLDED, f"folded into {ticket.ticket_id}", new, event, notify=raised
        )

    def _hold(
        self, ticket: Ticket, trigger: Trigger, now: datetime, opens: int
    ) -> TicketDecision:
        window = self.settings.flap_window
        reason = (
            f"flapping: opened {opens} times within {window}; held on "
            f"{ticket.ticket_id}"
        )
        new = replace(self._observe(ticket, trigger), flapping=True)
        new, event = stamp_event(
            ticket,
            new,
            action=TicketAction.HOLD,
            actor=SYSTEM_ACTOR,
            at=now,
            note=reason,
            details={"opens": opens, "occurrences": new.occurrences},
        )
        return TicketDecision(Outcome.HELD, reason, new, event)

    def _reopen(
        self, ticket: Ticket, trigger: Trigger, now: datetime
    ) -> TicketDecision:
        assert ticket.resolved_at is not None
        since = now - ticket.resolved_at
        new = self._observe(reopen(ticket, now, self.sla), trigger)
        new = replace(new, growth_reference=trigger.observed_value)
        note = f"fired again {since} after it was resolved (cool-down " + (
            f"{self.settings.cooldown})"
        )
        new, event = stamp_event(
            ticket,
            new,
            action=TicketAction.REOPEN,
            actor=SYSTEM_ACTOR,
            at=now,
            note=note,
            details={"reopen_count": new.reopen_count},
        )
        return TicketDecision(
            Outcome.REOPENED, f"reopened {ticket.ticket_id}", new, event, notify=True
        )

    def _open(
        self,
        trigger: Trigger,
        tickets: Sequence[Ticket],
        now: datetime,
        sequence: int,
        previous: Ticket | None,
    ) -> TicketDecision:
        rule = self._rule(trigger)
        priority, reason = compute_priority(trigger, rule)
        team = self.routing.team_for(trigger.topic, rule)
        owner = choose_owner(team, tickets)
        ack_due, resolve_due = self.sla.dues(priority, now)
        ticket_id = self.id_factory(trigger.fingerprint, sequence)
        limits = self.settings
        ticket = Ticket(
            ticket_id=ticket_id,
            fingerprint=trigger.fingerprint,
            sequence=sequence,
            status=TicketStatus.OPEN,
            priority=priority,
            priority_reason=reason,
            topic=trigger.topic,
            rule=trigger.rule,
            kind=trigger.kind,
            keyword=trigger.keyword,
            team=team.name,
            owner=owner,
            occurrences=1,
            first_seen=trigger.window_start,
            last_seen=trigger.window_end,
            opened_at=now,
            ack_due=ack_due,
            resolve_due=resolve_due,
            threshold=trigger.threshold,
            opening_value=trigger.observed_value,
            growth_reference=trigger.observed_value,
            peak_value=trigger.observed_value,
            expected_value=trigger.expected_value,
            evidence=merge_evidence((), trigger.evidence, limits.evidence_limit),
            keywords=tuple(dict.fromkeys(trigger.keywords))[: limits.keyword_limit],
            history=(
                Observation(
                    trigger.window_start,
                    trigger.window_end,
                    trigger.observed_value,
                    trigger.expected_value,
                ),
            ),
            opened_times=(now,),
            channels=rule.channels if rule else (),
        )
        note = reason
        if previous is not None:
            note += f"; previous ticket {previous.ticket_id} is {previous.status}"
        ticket, event = stamp_event(
            None,
            ticket,
            action=TicketAction.OPEN,
            actor=SYSTEM_ACTOR,
            at=now,
            note=note,
            details={"team": team.name, "owner": owner, "priority": str(priority)},
        )
        return TicketDecision(
            Outcome.OPENED, f"opened {ticket_id}", ticket, event, notify=True
        )
