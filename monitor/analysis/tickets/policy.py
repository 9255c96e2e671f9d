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
    ALL_POSTS,
    HOT_WORD,
    SYSTEM_ACTOR,
    AlertRule,
    InvalidPolicyError,
    NoticeKind,
    Observation,
    Signal,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketStatus,
    Trigger,
    default_ticket_id,
    group_fields,
    incident_fingerprint,
    require_aware,
)
from monitor.analysis.tickets.outbox import (
    NoticeClock,
    hold_update,
    queue_notice,
    repeat_due_at,
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
        group_window_seconds: A signal folds into its group's open incident
            if its event time is within this many seconds of the incident's
            first or latest window (event time, > 0; default 1 h).
        group_wait_seconds: A new incident below P2 is notified this long
            after its first signal, so signals arriving together make one
            notice (>= 0, <= 1 s by default; P1 and P2 go at once).
        group_interval_seconds: Later signals and values fold into one
            update notice at most this often per incident (> 0; default
            5 min), on the ``notice_clock``.
        repeat_interval_seconds: An incident still ``open`` (nobody
            acknowledged it) is notified again after this long without a
            notice (> 0; default 4 h), on the ``notice_clock``.
        notice_clock: What ``group_interval`` and ``repeat_interval`` are
            measured on: ``event`` (default), the signals' event time, so a
            replay or a backlog is notified as the incident happened (an
            update goes out when its event time is ``group_interval`` past
            the last notice's; an ``open`` incident is told again when a
            signal arrives ``repeat_interval`` of event time after it); or
            ``wall``, the decision time. See
            :mod:`~monitor.analysis.tickets.outbox`.
        notice_retry_seconds: First wait before a channel that failed is
            tried again; doubles per failed round (> 0).
        notice_retry_max_seconds: Longest such wait (>= the first).
        review_required: Priorities whose close needs a review (root cause,
            resolution and lessons); others may give one.
        seen_signal_limit: Signal ids a ticket remembers for de-duplication
            (>= 1).

    """

    cooldown: timedelta = timedelta(minutes=30)
    flap_max_opens: int = 3
    flap_window: timedelta = timedelta(hours=2)
    growth_ratio: float = 0.5
    escalate_every: int = 10
    evidence_limit: int = 10
    history_limit: int = 48
    keyword_limit: int = 20
    group_window_seconds: float = 3600.0
    group_wait_seconds: float = 1.0
    group_interval_seconds: float = 300.0
    repeat_interval_seconds: float = 4 * 3600.0
    notice_clock: NoticeClock = NoticeClock.EVENT
    notice_retry_seconds: float = 2.0
    notice_retry_max_seconds: float = 300.0
    review_required: frozenset[str] = frozenset({"P1", "P2"})
    seen_signal_limit: int = 200

    def __post_init__(self) -> None:
        problems = []
        try:
            object.__setattr__(self, "notice_clock", NoticeClock(self.notice_clock))
        except ValueError:
            problems.append("notice_clock must be event or wall")
        if self.group_wait_seconds < 0:
            problems.append("group_wait must be >= 0")
        for name in ("group_window", "group_interval", "repeat_interval"):
            if not getattr(self, f"{name}_seconds") > 0:
                problems.append(f"{name} must be > 0")
        if not 0 < self.notice_retry_seconds <= self.notice_retry_max_seconds:
            problems.append("notice retry waits must be > 0, first <= max")
        if self.seen_signal_limit < 1:
            problems.append("seen_signal_limit must be >= 1")
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
        notify: True if a notice was queued for it (opened, reopened, a
            signal joining, a raised priority, the last signal withdrawn, or
            a repeat on the event clock); a change that tells nothing new is
            counted in the next notice instead.

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
        """Decide what a trigger (a signal) does, given the known tickets.

        In order: a maintenance window or a silence covering the trigger's
        event time (a silence with ``clock: wall``: ``now``) suppresses it.
        A signal id a ticket has already folded is a no-op (``duplicate``),
        unless it confirms a provisional signal or withdraws one. A
        trigger of a rule whose pre-incident ticket (``(topic, rule,
        keyword)`` fingerprint, opened before an upgrade) is still active
        folds into that ticket as before. Otherwise the signal folds into
        its group's active incident whose event-time span it falls within
        ``group_window`` of; else, if the group flaps (``flap_max_opens``
        opens within ``flap_window``) it is held on the latest resolved
        incident; a resolved incident within the cool-down is reopened; and
        anything else opens a new incident.

        Args:
            trigger: What fired.
            tickets: Known tickets: every active one and the recent ones of
                the group key and the legacy fingerprint (at least the
                latest), the team's tickets for routing, and the active
                tickets sharing evidence posts (for links).
            now: Decision time (timezone-aware, wall clock): ticket times,
                deadlines and when notices are due. On the ``event`` notice
                clock, group_interval and repeat_interval are judged on the
                trigger's event time instead (``TicketSettings.notice_clock``).

        Returns:
            The decision; nothing is modified. Notices to send are queued in
            the decided ticket's outbox (``notify`` is True when one was).

        """
        require_aware(now, "now")
        tickets = list(tickets)
        for window in self.maintenance:
            if window.is_active(trigger.topic, trigger.event_time):
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
                    f"{silence.expires_at.isoformat()}, {silence.clock} time)",
                )
        legacy = sorted(
            (
                t
                for t in tickets
                if t.fingerprint == trigger.fingerprint
                and t.group_key is None
                and t.is_active
            ),
            key=lambda t: t.sequence,
        )
        if legacy:
            return self._fold(legacy[-1], trigger, now)
        key = self.group_key(trigger)
        group = incident_fingerprint(key)
        mine = sorted(
            (t for t in tickets if t.fingerprint == group),
            key=lambda t: t.sequence,
        )
        signal_id = trigger.signal_key
        seen = [t for t in mine if signal_id in t.seen_signals]
        if seen:
            return self._known_signal(seen[-1], trigger, now)
        if trigger.retracted:
            return TicketDecision(
                Outcome.DUPLICATE,
                f"signal {signal_id} was never folded; nothing to withdraw",
            )
        active = [t for t in mine if t.is_active and self._within_group(t, trigger)]
        if active:
            return self._fold_signal(active[-1], trigger, tickets, now)
        latest = mine[-1] if mine else None
        if latest is not None and latest.status == TicketStatus.RESOLVED:
            opens = self._recent_opens(mine, now)
            if opens >= self.settings.flap_max_opens:
                return self._hold(latest, trigger, now, opens)
            assert latest.resolved_at is not None
            if now - latest.resolved_at <= self.settings.cooldown:
                return self._reopen(latest, trigger, tickets, now)
        sequence = max((t.sequence for t in mine), default=0) + 1
        return self._open(trigger, tickets, now, sequence, latest, key)

    def group_key(self, trigger: Trigger) -> str:
        """Return the incident group key of a trigger: rule's ``group_by`` fields.

        E.g. ``topic=空调异味`` (the default) or
        ``topic=星河广场,keyword=停车``; a trigger of an unknown rule groups
        by topic, and so does a ``hot_words:`` rule's hot word found inside a
        watched topic (it joins that topic's incident).
        """
        rule = self._rule(trigger)
        names = group_fields(rule.group_by if rule is not None else "topic")
        if rule is not None and rule.topic == ALL_POSTS != trigger.topic:
            names = ("topic",)  # a hot word inside a topic joins its incident
        values = {
            "topic": trigger.topic,
            "rule": trigger.rule,
            "kind": str(trigger.kind),
            "keyword": trigger.keyword or "",
        }
        return ",".join(f"{name}={values[name]}" for name in names)

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
            review_required=self.settings.review_required,
            **params,
        )

    # -- the outcomes ----------------------------------------------------------

    def _rule(self, trigger: Trigger) -> AlertRule | None:
        rule = self.rules.get((trigger.topic, trigger.rule))
        if rule is None and trigger.kind == HOT_WORD:
            # A hot word of the hot_words: rules found inside a watched topic
            # carries that topic; the rule is still the file's.
            rule = self.rules.get((ALL_POSTS, trigger.rule))
        return rule

    def _channels(self, trigger: Trigger) -> tuple[str, ...]:
        rule = self._rule(trigger)
        return rule.channels if rule is not None else ()

    def _recent_opens(self, tickets: Sequence[Ticket], now: datetime) -> int:
        since = now - self.settings.flap_window
        return sum(
            1 for t in tickets for moment in t.opened_times if since < moment <= now
        )

    def _within_group(self, ticket: Ticket, trigger: Trigger) -> bool:
        """Return True if the trigger is within ``group_window`` of the ticket."""
        window = timedelta(seconds=self.settings.group_window_seconds)
        return (
            trigger.window_start <= ticket.last_seen + window
            and trigger.window_end >= ticket.first_seen - window
        )

    def _observe(self, ticket: Ticket, trigger: Trigger) -> Ticket:
        """Fold a trigger's window, evidence and keywords into a ticket.

        The ticket-level values (peak, expected) follow only the signals of
        its opening rule: an incident mixes units across rules, and each
        signal keeps its own values.
        """
        observation = Observation(
            trigger.window_start,
            trigger.window_end,
            trigger.observed_value,
            trigger.expected_value,
        )
        limits = self.settings
        lead = (trigger.rule, trigger.keyword) == (ticket.rule, ticket.keyword)
        keywords = tuple(dict.fromkeys((*trigger.keywords, *ticket.keywords)))
        return replace(
            ticket,
            occurrences=ticket.occurrences + 1,
            first_seen=min(ticket.first_seen, trigger.window_start),
            last_seen=max(ticket.last_seen, trigger.window_end),
            peak_value=(
                max(ticket.peak_value, trigger.observed_value)
                if lead
                else ticket.peak_value
            ),
            expected_value=(
                trigger.expected_value
                if lead and trigger.expected_value is not None
                else ticket.expected_value
            ),
            evidence=merge_evidence(
                ticket.evidence, trigger.evidence, limits.evidence_limit
            ),
            keywords=keywords[: limits.keyword_limit],
            history=(*ticket.history, observation)[-limits.history_limit :],
            channels=tuple(dict.fromkeys((*ticket.channels, *self._channels(trigger)))),
        )

    def _signal_of(self, trigger: Trigger, now: datetime) -> Signal:
        priority, _ = compute_priority(trigger, self._rule(trigger))
        return Signal(
            rule=trigger.rule,
            kind=trigger.kind,
            keyword=trigger.keyword,
            first_fired=now,
            first_window_start=trigger.window_start,
            last_window_end=trigger.window_end,
            last_value=trigger.observed_value,
            peak_value=trigger.observed_value,
            threshold=trigger.threshold,
            baseline=trigger.expected_value,
            priority=priority,
            signal_id=trigger.signal_key,
            provisional=trigger.provisional,
            growth_reference=trigger.observed_value,
        )

    def _with_signal(
        self, ticket: Ticket, trigger: Trigger, tickets: Sequence[Ticket], now: datetime
    ) -> tuple[Ticket, Signal | None, Signal]:
        """Add the trigger to the ticket's signals, ids and links.

        Returns:
            The ticket, the series' signal before (``None`` if new) and after.

        """
        fresh = self._signal_of(trigger, now)
        before = next((s for s in ticket.signals if s.series == fresh.series), None)
        if before is None:
            after = fresh
            signals = (*ticket.signals, fresh)
        else:
            after = replace(
                before,
                last_window_end=max(before.last_window_end, trigger.window_end),
                last_value=trigger.observed_value,
                peak_value=max(before.peak_value, trigger.observed_value),
                baseline=(
                    trigger.expected_value
                    if trigger.expected_value is not None
                    else before.baseline
                ),
                priority=fresh.priority,
                occurrences=before.occurrences + 1,
                signal_id=fresh.signal_id,
                provisional=trigger.provisional,
                retracted=False,
            )
            signals = tuple(after if s is before else s for s in ticket.signals)
        seen = (*ticket.seen_signals, trigger.signal_key)
        ticket = replace(
            ticket,
            signals=signals,
            seen_signals=seen[-self.settings.seen_signal_limit :],
            linked=self._links(ticket, trigger, tickets),
        )
        return ticket, before, after

    @staticmethod
    def _links(
        ticket: Ticket, trigger: Trigger, tickets: Sequence[Ticket]
    ) -> tuple[str, ...]:
        """Other active incidents sharing an evidence post with the trigger."""
        posts = {item.post_id for item in trigger.evidence}
        if not posts:
            return ticket.linked
        found = [
            other.ticket_id
            for other in tickets
            if other.ticket_id != ticket.ticket_id
            and other.fingerprint != ticket.fingerprint
            and other.is_active
            and posts & {item.post_id for item in other.evidence}
        ]
        return tuple(dict.fromkeys((*ticket.linked, *found)))

    def _notice(
        self,
        ticket: Ticket,
        kind: NoticeKind,
        now: datetime,
        event: TicketEvent,
        trigger: Trigger | None = None,
    ) -> Ticket:
        return queue_notice(
            ticket,
            kind,
            now=now,
            channels=ticket.channels,
            settings=self.settings,
            event_id=event.event_id,
            crossing_received_at=trigger.crossing_received_at if trigger else None,
            event_time=trigger.event_time if trigger else None,
        )

    def _quiet(
        self, ticket: Ticket, trigger: Trigger, now: datetime, event: TicketEvent
    ) -> tuple[Ticket, bool]:
        """Hold a change that tells nothing new for the next notice.

        Unless, on the event clock, the signal comes ``repeat_interval`` of
        event time after the incident's last notice while it is still
        ``open``: then the incident is told again (``repeat``).

        Returns:
            The ticket and whether a notice was queued.

        """
        if repeat_due_at(ticket, trigger.event_time, self.settings):
            return self._notice(ticket, NoticeKind.REPEAT, now, event, trigger), True
        held = hold_update(
            ticket, now=now, settings=self.settings, event_time=trigger.event_time
        )
        return held, False

    def _escalation(
        self, ticket: Ticket, trigger: Trigger, growth_reference: float, count: int
    ) -> tuple[list[str], bool]:
        """Reasons to raise the priority one level; and whether the value grew."""
        why = []
        grew = trigger.observed_value >= growth_reference * (
            1 + self.settings.growth_ratio
        )
        if grew:
            growth = trigger.observed_value / growth_reference - 1
            why.append(
                f"{trigger.rule} grew {growth:.0%} to "
                f"{format_number(trigger.observed_value)} from "
                f"{format_number(growth_reference)}"
            )
        if count % self.settings.escalate_every == 0:
            why.append(f"{count} occurrences")
        return why, grew

    def _raise(
        self,
        ticket: Ticket,
        new: Ticket,
        trigger: Trigger,
        why: list[str],
        now: datetime,
        details: dict[str, Any],
    ) -> tuple[Ticket, bool]:
        """Apply the escalation reasons and the trigger's own score to ``new``."""
        priority = raise_priority(ticket.priority) if why else ticket.priority
        computed, computed_reason = compute_priority(trigger, self._rule(trigger))
        if is_more_urgent(computed, priority):
            priority = computed
            why.append(f"{trigger.rule} alone scores {computed_reason}")
        if priority == ticket.priority:
            return new, False
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
        details.update(from_priority=str(ticket.priority), to_priority=str(priority))
        return new, True

    def _fold(self, ticket: Ticket, trigger: Trigger, now: datetime) -> TicketDecision:
        """Fold into a pre-incident (one rule) ticket, as before the upgrade."""
        if (
            any(
                seen.window_start == trigger.window_start
                and seen.window_end == trigger.window_end
                for seen in ticket.history
            )
            or trigger.retracted
        ):
            return TicketDecision(
                Outcome.DUPLICATE,
                f"window {trigger.window_start.isoformat()} already on "
                f"{ticket.ticket_id}",
                ticket=ticket,
            )
        new = self._observe(ticket, trigger)
        why, grew = self._escalation(
            ticket, trigger, ticket.growth_reference, new.occurrences
        )
        if grew:
            new = replace(new, growth_reference=trigger.observed_value)
        details: dict[str, Any] = {
            "occurrences": new.occurrences,
            "observed_value": trigger.observed_value,
            "window_start": trigger.window_start.isoformat(),
        }
        new, raised = self._raise(ticket, new, trigger, why, now, details)
        note = f"occurrence {new.occurrences}" + (
            f"; priority {ticket.priority} -> {new.priority}: " + "; ".join(why)
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
        if raised:
            new = self._notice(new, NoticeKind.ESCALATED, now, event, trigger)
            notify = True
        else:
            new, notify = self._quiet(new, trigger, now, event)
        return TicketDecision(
            Outcome.FOLDED, f"folded into {ticket.ticket_id}", new, event, notify=notify
        )

    def _fold_signal(
        self, ticket: Ticket, trigger: Trigger, tickets: Sequence[Ticket], now: datetime
    ) -> TicketDecision:
        """Fold a new signal (or a new window of one) into an active incident."""
        new = self._observe(ticket, trigger)
        new, before, after = self._with_signal(new, trigger, tickets, now)
        reference = before.growth_reference if before is not None else 0.0
        why: list[str] = []
        grew = False
        if before is not None:
            why, grew = self._escalation(ticket, trigger, reference, after.occurrences)
        if grew:
            after = replace(after, growth_reference=trigger.observed_value)
            new = replace(
                new,
                signals=tuple(
                    after if s.series == after.series else s for s in new.signals
                ),
            )
        details: dict[str, Any] = {
            "rule": trigger.rule,
            "signal_id": trigger.signal_key,
            "signals": len(new.signals),
            "occurrences": new.occurrences,
            "observed_value": trigger.observed_value,
            "window_start": trigger.window_start.isoformat(),
            "provisional": trigger.provisional,
        }
        new, raised = self._raise(ticket, new, trigger, why, now, details)
        what = "new signal" if before is None else "signal"
        note = (
            f"{what} {trigger.rule}"
            + (f" on {trigger.keyword}" if trigger.keyword else "")
            + f" ({len(new.signals)} signals, occurrence {new.occurrences})"
        )
        if raised:
            note += f"; priority {ticket.priority} -> {new.priority}: " + "; ".join(why)
        if set(new.linked) - set(ticket.linked):
            note += "; linked " + ", ".join(
                sorted(set(new.linked) - set(ticket.linked))
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
        # Only news makes a notice (Alertmanager re-notifies a group only
        # when it changed): a rule joining (or a signal coming back after it
        # was withdrawn), or a priority change. A signal that repeats a rule
        # already told, with another value or another keyword (a second hot
        # word), is counted in the next notice.
        told = any(
            s.rule == trigger.rule and not s.retracted
            for s in ticket.signals
            if s.series != after.series
        )
        joined = (before is None and not told) or (
            before is not None and before.retracted
        )
        notify = raised or joined
        if notify:
            kind = NoticeKind.ESCALATED if raised else NoticeKind.UPDATED
            new = self._notice(new, kind, now, event, trigger)
        else:
            new, notify = self._quiet(new, trigger, now, event)
        return TicketDecision(
            Outcome.FOLDED, f"folded into {ticket.ticket_id}", new, event, notify=notify
        )

    def _known_signal(
        self, ticket: Ticket, trigger: Trigger, now: datetime
    ) -> TicketDecision:
        """Handle a signal id already folded: confirm, withdraw, or nothing."""
        signal_id = trigger.signal_key
        current = next((s for s in ticket.signals if s.signal_id == signal_id), None)
        duplicate = TicketDecision(
            Outcome.DUPLICATE,
            f"signal {signal_id} already on {ticket.ticket_id}",
            ticket=ticket,
        )
        if current is None:
            return duplicate  # a later window of its series replaced it
        if trigger.retracted and not current.retracted:
            changed = replace(current, retracted=True, provisional=False)
            action_note = f"signal {signal_id} withdrawn: its window closed below"
        elif current.provisional and not trigger.provisional and not trigger.retracted:
            changed = replace(
                current,
                provisional=False,
                last_value=trigger.observed_value,
                peak_value=max(current.peak_value, trigger.observed_value),
            )
            action_note = f"signal {signal_id} confirmed at its window's close"
        else:
            return duplicate
        new = replace(
            ticket,
            signals=tuple(changed if s is current else s for s in ticket.signals),
        )
        new, event = stamp_event(
            ticket,
            new,
            action=TicketAction.FOLD,
            actor=SYSTEM_ACTOR,
            at=now,
            note=action_note,
            details={
                "signal_id": signal_id,
                "retracted": changed.retracted,
                "observed_value": trigger.observed_value,
            },
        )
        # A withdrawal alone is told only when no signal is left standing.
        last = all(s.retracted for s in new.signals)
        if changed.retracted and last:
            new = self._notice(new, NoticeKind.UPDATED, now, event)
        else:
            new = hold_update(
                new, now=now, settings=self.settings, event_time=trigger.event_time
            )
        return TicketDecision(
            Outcome.FOLDED,
            f"{action_note} on {ticket.ticket_id}",
            new,
            event,
            notify=changed.retracted and last,
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
        if new.group_key is not None:
            new, _, _ = self._with_signal(new, trigger, (), now)
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
        self, ticket: Ticket, trigger: Trigger, tickets: Sequence[Ticket], now: datetime
    ) -> TicketDecision:
        assert ticket.resolved_at is not None
        since = now - ticket.resolved_at
        new = self._observe(reopen(ticket, now, self.sla), trigger)
        new, _, _ = self._with_signal(new, trigger, tickets, now)
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
            details={"reopen_count": new.reopen_count, "rule": trigger.rule},
        )
        new = self._notice(new, NoticeKind.REOPENED, now, event, trigger)
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
        group_key: str,
    ) -> TicketDecision:
        rule = self._rule(trigger)
        priority, reason = compute_priority(trigger, rule)
        team = self.routing.team_for(trigger.topic, rule)
        owner = choose_owner(team, tickets)
        ack_due, resolve_due = self.sla.dues(priority, now)
        group = incident_fingerprint(group_key)
        ticket_id = self.id_factory(group, sequence)
        limits = self.settings
        ticket = Ticket(
            ticket_id=ticket_id,
            fingerprint=group,
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
            group_key=group_key,
        )
        ticket, _, _ = self._with_signal(ticket, trigger, tickets, now)
        note = reason
        if previous is not None:
            note += f"; previous ticket {previous.ticket_id} is {previous.status}"
        if ticket.linked:
            note += "; shares posts with " + ", ".join(ticket.linked)
        ticket, event = stamp_event(
            None,
            ticket,
            action=TicketAction.OPEN,
            actor=SYSTEM_ACTOR,
            at=now,
            note=note,
            details={
                "team": team.name,
                "owner": owner,
                "priority": str(priority),
                "group_key": group_key,
                "signal_id": trigger.signal_key,
            },
        )
        ticket = self._notice(ticket, NoticeKind.OPENED, now, event, trigger)
        return TicketDecision(
            Outcome.OPENED, f"opened {ticket_id}", ticket, event, notify=True
        )
