"""The ticket vocabulary and data types: rules, triggers, tickets, events.

Every type here is a frozen dataclass; the functions that change a ticket
live in :mod:`~monitor.analysis.tickets.lifecycle` and
:mod:`~monitor.analysis.tickets.policy` and return new values. The string
vocabularies are ``StrEnum`` s: a member equals its value (``TicketStatus.OPEN
== "open"``), so stored documents, API bodies and the OpenAPI schema carry the
same text as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from monitor.errors import MonitorError

# --- vocabulary ---------------------------------------------------------------


class Priority(StrEnum):
    """How urgent a ticket is, ``P1`` (most urgent) to ``P4``."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


#: Priorities, most urgent first (an index is a rank).
PRIORITIES = tuple(Priority)


class RuleKind(StrEnum):
    """What a rule (and so a trigger and its ticket) is about."""

    NEGATIVE_VOLUME = "negative_volume"
    NEGATIVE_SHARE = "negative_share"
    BURST = "burst"
    EMERGING_KEYWORD = "emerging_keyword"
    REPEAT_COMPLAINTS = "repeat_complaints"


RULE_KINDS = tuple(RuleKind)
# The members under their old names, typed as the text they always were, for
# code that mixes them with kinds read from files.
NEGATIVE_VOLUME: str = RuleKind.NEGATIVE_VOLUME
NEGATIVE_SHARE: str = RuleKind.NEGATIVE_SHARE
BURST: str = RuleKind.BURST
EMERGING_KEYWORD: str = RuleKind.EMERGING_KEYWORD
REPEAT_COMPLAINTS: str = RuleKind.REPEAT_COMPLAINTS


class TicketStatus(StrEnum):
    """Where a ticket is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


STATUSES = tuple(TicketStatus)
# The members under their old names (see the rule kinds above).
OPEN: str = TicketStatus.OPEN
ACKNOWLEDGED: str = TicketStatus.ACKNOWLEDGED
IN_PROGRESS: str = TicketStatus.IN_PROGRESS
RESOLVED: str = TicketStatus.RESOLVED
CLOSED: str = TicketStatus.CLOSED
#: Statuses in which a ticket is still being worked on.
ACTIVE_STATUSES = frozenset(
    {TicketStatus.OPEN, TicketStatus.ACKNOWLEDGED, TicketStatus.IN_PROGRESS}
)


class TicketAction(StrEnum):
    """What a :class:`TicketEvent` records.

    The first nine are the actions people take (see
    :data:`~monitor.analysis.tickets.lifecycle.ACTIONS`); ``reopen`` is also
    done by the policy, and the last five only by the policy.
    """

    ACKNOWLEDGE = "acknowledge"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    ASSIGN = "assign"
    TRANSFER = "transfer"
    ESCALATE = "escalate"
    COMMENT = "comment"
    OPEN = "open"
    FOLD = "fold"
    HOLD = "hold"
    SLA_BREACH = "sla_breach"
    DELIVERY = "delivery"


#: Actor recorded on events the policy itself causes.
SYSTEM_ACTOR = "system"


# --- errors -------------------------------------------------------------------


class InvalidTransitionError(MonitorError):
    """An action is not allowed on a ticket in its current status.

    Attributes:
        ticket_id: The ticket the action was applied to.
        action: The refused action.
        status: The ticket's status at the time.
        reason: Why, in words for the person who tried.

    """

    def __init__(self, ticket_id: str, action: str, status: str, reason: str) -> None:
        self.ticket_id = ticket_id
        self.action = action
        self.status = status
        self.reason = reason
        super().__init__(
            f"cannot {action} ticket {ticket_id} in status {str(status)!r}: {reason}"
        )


class InvalidPolicyError(MonitorError):
    """A policy value (trigger, rule, silence, window, SLA) is out of range.

    Attributes:
        reason: What is wrong.

    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def require_aware(moment: datetime | None, what: str) -> None:
    """Refuse a naive datetime.

    Args:
        moment: The time to check; ``None`` passes.
        what: Its name, for the message.

    Raises:
        InvalidPolicyError: If ``moment`` has no UTC offset.

    """
    if moment is not None and (
        moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None
    ):
        raise InvalidPolicyError(f"{what} must be timezone-aware, got {moment!r}")


def _rule_kind(kind: str) -> RuleKind:
    try:
        return RuleKind(kind)
    except ValueError:
        raise InvalidPolicyError(f"unknown rule kind {kind!r}") from None


# --- rules --------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRule:
    """One rule on a watched topic, as the policy needs it.

    Attributes:
        name: Rule name, unique within its topic; part of the fingerprint.
        topic: The watched topic it applies to.
        kind: What it watches; text is turned into its :class:`RuleKind`.
        threshold: The value at which it fires, in the kind's unit: negative
            posts per window (``negative_volume``), a share 0-1
            (``negative_share``), a burst score in ``-log10`` probability
            (``burst``), posts with a new keyword per window
            (``emerging_keyword``) or one author's negative posts within
            ``within_seconds`` (``repeat_complaints``).
        window_seconds: Length of the counting window (seconds, > 0).
        min_volume: Posts needed in the window before ``negative_share`` may
            fire (>= 0; 0 for the other kinds).
        within_seconds: Look-back of ``repeat_complaints`` (seconds), else 0.
        channels: Names of the notification channels to deliver to.
        team: Team that takes the tickets, overriding the topic routing.
        min_priority: Floor of the computed priority (``P1``..``P4``), if any.

    """

    name: str
    topic: str
    kind: RuleKind
    threshold: float
    window_seconds: int = 300
    min_volume: int = 0
    within_seconds: int = 0
    channels: tuple[str, ...] = ()
    team: str | None = None
    min_priority: Priority | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _rule_kind(self.kind))
        if not self.threshold > 0:
            raise InvalidPolicyError(f"rule {self.name!r}: threshold must be > 0")
        if self.min_priority is not None:
            if self.min_priority not in PRIORITIES:
                names = tuple(str(priority) for priority in PRIORITIES)
                raise InvalidPolicyError(f"min_priority must be one of {names}")
            object.__setattr__(self, "min_priority", Priority(self.min_priority))


# --- triggers, tickets, events ------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """A post that shows what a ticket is about.

    Attributes:
        post_id: Id of the post (its Elasticsearch document id).
        excerpt: A short piece of its text.
        followers: The author's followers (>= 0).
        reposts: Reposts of the post (>= 0).
        published_at: When it was published (timezone-aware), if known.
        author: Author handle, if known.
        url: Link to the original, if known.

    """

    post_id: str
    excerpt: str
    followers: int = 0
    reposts: int = 0
    published_at: datetime | None = None
    author: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Observation:
    """One window's value on a ticket's history.

    Attributes:
        window_start: Window start (timezone-aware).
        window_end: Window end (timezone-aware).
        observed_value: The rule's value in the window (its unit).
        expected_value: The baseline for the window, if known.

    """

    window_start: datetime
    window_end: datetime
    observed_value: float
    expected_value: float | None = None


@dataclass(frozen=True)
class Trigger:
    """A rule that fired on one window.

    Attributes:
        topic: Watched topic.
        rule: Rule name.
        kind: Rule kind; text is turned into its :class:`RuleKind`.
        keyword: Keyword it is about (emerging keywords), else ``None``.
        window_start: Window start (timezone-aware).
        window_end: Window end (timezone-aware, >= start).
        observed_value: The value that crossed the threshold (rule's unit).
        threshold: The rule's threshold (same unit, > 0).
        expected_value: Baseline expectation for the window, if known.
        burst_score: Burst score (``-log10`` probability), if known.
        author_followers: Most followers among the evidence authors (>= 0).
        repeat_complaints: Most negative posts by one author (>= 0).
        customer_tier: Highest customer tier among the evidence, if any.
        evidence: Posts that show it.
        keywords: Keywords of the window, most frequent first.

    """

    topic: str
    rule: str
    kind: RuleKind
    keyword: str | None
    window_start: datetime
    window_end: datetime
    observed_value: float
    threshold: float
    expected_value: float | None = None
    burst_score: float | None = None
    author_followers: int = 0
    repeat_complaints: int = 0
    customer_tier: str | None = None
    evidence: tuple[Evidence, ...] = ()
    keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require_aware(self.window_start, "window_start")
        require_aware(self.window_end, "window_end")
        if self.window_end < self.window_start:
            raise InvalidPolicyError("trigger window ends before it starts")
        object.__setattr__(self, "kind", _rule_kind(self.kind))

    @property
    def fingerprint(self) -> str:
        """The incident's fingerprint; see :func:`fingerprint`."""
        return fingerprint(self.topic, self.rule, self.keyword)


@dataclass(frozen=True)
class Ticket:
    """The state of one alert ticket. Treat it (and its dicts) as read-only.

    Attributes:
        ticket_id: ``T-<fingerprint hash[:10]>-<sequence>`` unless injected.
        fingerprint: See :func:`fingerprint`.
        sequence: 1 for the fingerprint's first ticket, 2 for the next, ...
        status: Where it is in its lifecycle.
        priority: ``P1`` (most urgent) .. ``P4``.
        priority_reason: Why it has that priority, in words.
        topic: Watched topic.
        rule: Rule name.
        kind: Rule kind.
        keyword: Keyword, if the rule is about one.
        team: Team that owns it.
        owner: Person working on it, ``None`` if unassigned.
        occurrences: Triggers folded into it, the opening one included.
        first_seen: Start of the first window that fired.
        last_seen: End of the latest window that fired.
        opened_at: When it was opened (or last reopened).
        acknowledged_at: When someone acknowledged it, if so.
        started_at: When work started (``in_progress``), if so.
        resolved_at: When it was resolved, if it is resolved or closed.
        closed_at: When it was closed, if closed.
        ack_due: Acknowledge deadline.
        resolve_due: Resolve deadline.
        escalation_level: 0, then +1 per escalation.
        escalation_contact: Contact of the current escalation level, if any.
        threshold: The rule's threshold.
        opening_value: Observed value when it was opened.
        growth_reference: Value the next growth escalation is measured from.
        peak_value: Highest observed value.
        expected_value: Latest baseline, if known.
        evidence: Most representative posts (most followers, then reposts).
        keywords: Keywords seen, most recent window's first (bounded).
        history: Observed values per window, oldest first (bounded).
        reopen_count: Times it was reopened.
        opened_times: When it was opened and reopened (bounded), for flapping.
        flapping: True once a trigger was held because the incident flaps.
        sla_breaches: Deadlines already handled, as ``"ack@<iso>"`` keys.
        delivery: Delivery status per notification channel.
        channels: Channels the rule notifies.
        revision: Number of events so far; the next event id uses it.

    """

    ticket_id: str
    fingerprint: str
    sequence: int
    status: TicketStatus
    priority: Priority
    priority_reason: str
    topic: str
    rule: str
    kind: RuleKind
    keyword: str | None
    team: str
    owner: str | None
    occurrences: int
    first_seen: datetime
    last_seen: datetime
    opened_at: datetime
    ack_due: datetime
    resolve_due: datetime
    threshold: float
    opening_value: float
    growth_reference: float
    peak_value: float
    acknowledged_at: datetime | None = None
    started_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    escalation_level: int = 0
    escalation_contact: str | None = None
    expected_value: float | None = None
    evidence: tuple[Evidence, ...] = ()
    keywords: tuple[str, ...] = ()
    history: tuple[Observation, ...] = ()
    reopen_count: int = 0
    opened_times: tuple[datetime, ...] = ()
    flapping: bool = False
    sla_breaches: frozenset[str] = frozenset()
    delivery: Mapping[str, str] = field(default_factory=dict)
    channels: tuple[str, ...] = ()
    revision: int = 0

    @property
    def is_active(self) -> bool:
        """True while open, acknowledged or in progress."""
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class TicketEvent:
    """One entry of a ticket's audit trail.

    Attributes:
        ticket_id: The ticket.
        event_id: ``<ticket_id>#<revision>``, unique and ordered per ticket.
        at: When it happened (timezone-aware).
        actor: Who did it (``system`` for the policy itself).
        action: What was done (``open``, ``fold``, ``acknowledge``, ...).
        from_status: Status before (``None`` when the ticket was created).
        to_status: Status after.
        note: Why, in the actor's words or the policy's.
        details: Extra facts (old/new owner, priority, deadline, ...).

    """

    ticket_id: str
    event_id: str
    at: datetime
    actor: str
    action: TicketAction
    from_status: TicketStatus | None
    to_status: TicketStatus
    note: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


def fingerprint(topic: str, rule: str, keyword: str | None) -> str:
    """Return the stable fingerprint of an incident.

    Args:
        topic: Watched topic.
        rule: Rule name.
        keyword: Keyword, or ``None``.

    Returns:
        ``fp-`` and the SHA-1 hex digest of the JSON array of the three, so
        that no two different triples can collide by concatenation.

    """
    raw = json.dumps([topic, rule, keyword], ensure_ascii=False)
    return "fp-" + hashlib.sha1(raw.encode("utf-8")).hexdigest()


def default_ticket_id(fingerprint_: str, sequence: int) -> str:
    """Return ``T-<first 10 hex digits of the fingerprint>-<sequence>``."""
    return f"T-{fingerprint_.removeprefix('fp-')[:10]}-{sequence}"
