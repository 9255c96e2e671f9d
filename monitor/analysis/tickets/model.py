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
    HOT_WORD = "hot_word"


RULE_KINDS = tuple(RuleKind)
# The members under their old names, typed as the text they always were, for
# code that mixes them with kinds read from files.
NEGATIVE_VOLUME: str = RuleKind.NEGATIVE_VOLUME
NEGATIVE_SHARE: str = RuleKind.NEGATIVE_SHARE
BURST: str = RuleKind.BURST
EMERGING_KEYWORD: str = RuleKind.EMERGING_KEYWORD
REPEAT_COMPLAINTS: str = RuleKind.REPEAT_COMPLAINTS
HOT_WORD: str = RuleKind.HOT_WORD
#: The topic of a rule over every post (the rules file's ``hot_words:``).
ALL_POSTS = "*"


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


class NoticeKind(StrEnum):
    """What a notice (a message to the channels) is about."""

    OPENED = "opened"
    REOPENED = "reopened"
    UPDATED = "updated"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REPEAT = "repeat"
    #: Assigned or transferred to someone: told to them personally only.
    ASSIGNED = "assigned"


#: Signal fields a rule's ``group_by`` may name.
GROUP_FIELDS = ("topic", "rule", "kind", "keyword")


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


class ReviewRequiredError(InvalidTransitionError):
    """A close lacks the review (复盘) its priority needs, or gives part of one."""


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


def group_fields(group_by: str) -> tuple[str, ...]:
    """Parse a ``group_by`` value (``"topic"``, ``"topic,keyword"``...).

    Raises:
        InvalidPolicyError: An empty value or a field not in
            :data:`GROUP_FIELDS`.

    """
    names = tuple(part.strip() for part in group_by.split(",") if part.strip())
    unknown = [name for name in names if name not in GROUP_FIELDS]
    if not names or unknown:
        raise InvalidPolicyError(
            f"group_by {group_by!r}: use one or more of {', '.join(GROUP_FIELDS)}"
        )
    return tuple(dict.fromkeys(names))


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
            ``within_seconds`` (``repeat_complaints``), or posts with a hot
            word within the rule's window (``hot_word``).
        window_seconds: Length of the counting window (seconds, > 0).
        min_volume: Posts needed in the window before ``negative_share`` may
            fire (>= 0; 0 for the other kinds).
        within_seconds: Look-back of ``repeat_complaints`` (seconds), else 0.
        channels: Names of the notification channels to deliver to.
        team: Team that takes the tickets, overriding the topic routing.
        min_priority: Floor of the computed priority (``P1``..``P4``), if any.
        group_by: Which fields of a signal make its incident's group key,
            comma-separated among :data:`GROUP_FIELDS` (default ``topic``: every
            rule of a topic folds into one incident; ``topic,rule,keyword``
            gives the old one-ticket-per-rule behaviour).

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
    group_by: str = "topic"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _rule_kind(self.kind))
        group_fields(self.group_by)  # refuses an unknown field
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
        signal_id: ``<rule>@<series>@<window end epoch seconds>``, unique per
            (rule, series, window); a trigger whose id a ticket has seen is a
            no-op (retried batch, restart, the close after an early firing).
            ``None`` (older detectors): :attr:`signal_key` derives one.
        provisional: A share rule that fired early on an incomplete window; a
            later trigger with the same ``signal_id`` and ``provisional=False``
            confirms it.
        retracted: This trigger withdraws the signal ``signal_id`` (its
            window closed below the threshold).
        crossing_post_id: The post that crossed the threshold, if known.
        crossing_published_at: That post's ``published_at`` (event time).
        crossing_received_at: That post's ``posts`` record timestamp (UTC):
            where the notice latency histogram is measured from.

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
    signal_id: str | None = None
    provisional: bool = False
    retracted: bool = False
    crossing_post_id: str | None = None
    crossing_published_at: datetime | None = None
    crossing_received_at: datetime | None = None

    def __post_init__(self) -> None:
        require_aware(self.window_start, "window_start")
        require_aware(self.window_end, "window_end")
        require_aware(self.crossing_published_at, "crossing_published_at")
        require_aware(self.crossing_received_at, "crossing_received_at")
        if self.window_end < self.window_start:
            raise InvalidPolicyError("trigger window ends before it starts")
        object.__setattr__(self, "kind", _rule_kind(self.kind))

    @property
    def fingerprint(self) -> str:
        """The legacy per-rule fingerprint; see :func:`fingerprint`.

        Tickets opened before incidents existed carry it; a trigger still
        folds into such an open ticket (the upgrade path in the README).
        """
        return fingerprint(self.topic, self.rule, self.keyword)

    @property
    def series(self) -> str:
        """What the rule counted: ``<topic>`` or ``<topic>/<keyword>``."""
        return self.topic if self.keyword is None else f"{self.topic}/{self.keyword}"

    @property
    def signal_key(self) -> str:
        """:attr:`signal_id`, or ``<rule>@<series>@<window end epoch s>``."""
        if self.signal_id is not None:
            return self.signal_id
        return f"{self.rule}@{self.series}@{int(self.window_end.timestamp())}"

    @property
    def event_time(self) -> datetime:
        """When the signal happened in event time.

        The crossing post's ``published_at`` if known, else the window start
        (the posts were published in it, however late they are processed).
        """
        return self.crossing_published_at or self.window_start


@dataclass(frozen=True)
class Signal:
    """One rule series (rule and keyword) folded into an incident ticket.

    Attributes:
        rule: Rule name.
        kind: Rule kind.
        keyword: Keyword, if the rule is about one.
        first_fired: When the incident first heard of it (decision time).
        first_window_start: Start of its first window (event time).
        last_window_end: End of its latest window (event time).
        last_value: Its latest observed value (the rule's unit).
        peak_value: Its highest observed value.
        threshold: The rule's threshold.
        baseline: Its latest expected value, if known.
        priority: What its latest window alone scores.
        occurrences: Windows of it folded in.
        signal_id: The latest window's signal id.
        provisional: True while its latest firing is an unconfirmed early one.
        retracted: True once its latest firing was withdrawn.
        growth_reference: Value its next growth escalation is measured from.

    """

    rule: str
    kind: RuleKind
    keyword: str | None
    first_fired: datetime
    first_window_start: datetime
    last_window_end: datetime
    last_value: float
    peak_value: float
    threshold: float
    baseline: float | None
    priority: Priority
    occurrences: int = 1
    signal_id: str = ""
    provisional: bool = False
    retracted: bool = False
    growth_reference: float = 0.0

    @property
    def series(self) -> tuple[str, str | None]:
        """``(rule, keyword)``: the key signals of one incident are kept by."""
        return (self.rule, self.keyword)


@dataclass(frozen=True)
class Notice:
    """A notice waiting in a ticket's outbox to reach its channels.

    It is written in the same (optimistic-concurrency) write as the change
    it tells of, and removed channel by channel as each accepts it, so a
    crash between the change and the send loses nothing. Each channel's
    delivery id is ``<notice_id>@<channel>`` (:meth:`delivery_id`), the same
    on every retry and after a restart, so receivers can drop repeats.

    Attributes:
        notice_id: ``<ticket_id>#n<revision>`` of the change that queued it.
        kind: What it tells of.
        priority: The ticket's priority when it was (last) queued.
        created_at: When it was queued.
        due_at: Not sent before this (``group_wait``, ``group_interval``,
            or a retry's backoff).
        channels: Channels that have not accepted it yet.
        event_id: The audit event it tells of, if any.
        folded: Later changes folded into it while it waited ("5 more
            updates").
        attempts: Failed sending rounds so far.
        last_error: What went wrong on the last failed round.
        crossing_received_at: ``posts`` timestamp of the post whose signal
            queued it, for the notice latency histogram.
        accepted: Channels that already accepted it.
        reached: Recipients a channel reached though its delivery failed
            as a whole (a group SMS that reached some mobiles), as the
            notifier's digests salted by the delivery id, never the numbers;
            a later round does not send to them again.

    """

    notice_id: str
    kind: NoticeKind
    priority: Priority
    created_at: datetime
    due_at: datetime
    channels: tuple[str, ...]
    event_id: str | None = None
    folded: int = 0
    attempts: int = 0
    last_error: str = ""
    crossing_received_at: datetime | None = None
    accepted: tuple[str, ...] = ()
    reached: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", NoticeKind(self.kind))
        object.__setattr__(self, "priority", Priority(self.priority))

    def delivery_id(self, channel: str) -> str:
        """Return the stable id of this notice's delivery to ``channel``."""
        return f"{self.notice_id}@{channel}"


@dataclass(frozen=True)
class Review:
    """The review (复盘) recorded when a ticket is closed.

    Attributes:
        root_cause: Why it happened.
        resolution: What was done about it.
        lessons: What to change so it does not happen again.
        author: Who closed the ticket.
        at: When (timezone-aware).

    """

    root_cause: str
    resolution: str
    lessons: str
    author: str
    at: datetime


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
        group_key: The incident's group key (e.g. ``topic=空调异味``);
            ``None`` on a ticket opened before incidents (one rule each).
        signals: The rule series folded into the incident, first fired first.
        seen_signals: Signal ids already folded (bounded), so a repeated
            trigger is a no-op.
        linked: Other incidents sharing evidence posts with this one.
        outbox: Notices not yet accepted by every channel.
        last_notice_at: When the latest notice was queued to go out (wall
            clock).
        notices: Notices queued so far (folded updates count once).
        notice_event_time: Event time of the latest signal told in a notice
            of its own (the notice clock's ``event`` time: group_interval and
            repeat_interval are measured from it); ``None`` until a signal
            is told.
        held_updates: Changes since the latest notice that no notice tells
            yet (a signal that only repeats a rule already told); the next
            notice counts them in its ``folded``.
        review: The review (复盘) of its latest close, if it was closed with
            one; kept when it is reopened, replaced by the next close.

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
    group_key: str | None = None
    signals: tuple[Signal, ...] = ()
    seen_signals: tuple[str, ...] = ()
    linked: tuple[str, ...] = ()
    outbox: tuple[Notice, ...] = ()
    last_notice_at: datetime | None = None
    notices: int = 0
    notice_event_time: datetime | None = None
    held_updates: int = 0
    review: Review | None = None

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


def incident_fingerprint(group_key: str) -> str:
    """Return the fingerprint of an incident by its group key.

    ``fp-`` and the SHA-1 of ``["incident", group_key]``: never equal to a
    legacy :func:`fingerprint` of a ``(topic, rule, keyword)`` triple.
    """
    raw = json.dumps(["incident", group_key], ensure_ascii=False)
    return "fp-" + hashlib.sha1(raw.encode("utf-8")).hexdigest()


def default_ticket_id(fingerprint_: str, sequence: int) -> str:
    """Return ``T-<first 10 hex digits of the fingerprint>-<sequence>``."""
    return f"T-{fingerprint_.removeprefix('fp-')[:10]}-{sequence}"
