"""Alert tickets (预警工单): the pure policy that turns triggers into tickets.

A rule that fires produces a :class:`Trigger`. :class:`TicketPolicy` decides,
from the tickets that already exist, whether the trigger opens a new ticket,
folds into the open one for the same incident, reopens a recently resolved
one, is held because the incident flaps, or is suppressed by a silence or a
maintenance window. People then move a ticket through its lifecycle with
:func:`apply_action`, and :func:`check_sla` finds the deadlines it missed.

Everything here is a pure function of its arguments: time is always passed in
as ``now`` (timezone-aware), ids are derived deterministically (or come from
an injected factory), and every change returns a new frozen :class:`Ticket`
together with the :class:`TicketEvent` that records who, when and why.

Priority scoring (:func:`compute_priority`) adds points for:

==========================  ==========================================  ======
signal                      condition                                   points
==========================  ==========================================  ======
past the threshold          observed / threshold >= 4 / >= 2 / >= 1.5   3/2/1
burst strength              burst score >= 8 / >= 5 (not burst rules)   2/1
author influence            max followers >= 1M / >= 100k / >= 10k      3/2/1
repeat complaints           one author's posts >= 5 / >= 3              2/1
                            (not repeat_complaints rules)
customer tier               vip / gold                                  2/1
==========================  ==========================================  ======

and maps the total to ``P1`` (>= 6), ``P2`` (4-5), ``P3`` (2-3) or ``P4``
(0-1); a rule's ``min_priority`` is a floor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from monitor.errors import MonitorError

# --- vocabulary ---------------------------------------------------------------

PRIORITIES = ("P1", "P2", "P3", "P4")

NEGATIVE_VOLUME = "negative_volume"
NEGATIVE_SHARE = "negative_share"
BURST = "burst"
EMERGING_KEYWORD = "emerging_keyword"
REPEAT_COMPLAINTS = "repeat_complaints"
RULE_KINDS = (
    NEGATIVE_VOLUME,
    NEGATIVE_SHARE,
    BURST,
    EMERGING_KEYWORD,
    REPEAT_COMPLAINTS,
)

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
IN_PROGRESS = "in_progress"
RESOLVED = "resolved"
CLOSED = "closed"
STATUSES = (OPEN, ACKNOWLEDGED, IN_PROGRESS, RESOLVED, CLOSED)
#: Statuses in which a ticket is still being worked on.
ACTIVE_STATUSES = frozenset({OPEN, ACKNOWLEDGED, IN_PROGRESS})

ROUND_ROBIN = "round_robin"
LEAST_LOADED = "least_loaded"
STRATEGIES = (ROUND_ROBIN, LEAST_LOADED)

CUSTOMER_TIER_POINTS = {"vip": 2, "gold": 1}

#: Actor recorded on events the policy itself causes.
SYSTEM_ACTOR = "system"

#: Actions :func:`apply_action` accepts, mapped to the statuses they start from.
ACTION_SOURCES: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({OPEN}),
    "start": frozenset({OPEN, ACKNOWLEDGED}),
    "resolve": frozenset(ACTIVE_STATUSES),
    "close": frozenset({RESOLVED}),
    "reopen": frozenset({RESOLVED, CLOSED}),
    "assign": frozenset(ACTIVE_STATUSES | {RESOLVED}),
    "transfer": frozenset(ACTIVE_STATUSES | {RESOLVED}),
    "escalate": frozenset(ACTIVE_STATUSES),
    "comment": frozenset(STATUSES),
}
ACTIONS = tuple(ACTION_SOURCES)

#: Outcomes of :meth:`TicketPolicy.decide`.
OPENED = "opened"
FOLDED = "folded"
REOPENED = "reopened"
HELD = "held"
SUPPRESSED = "suppressed"
DUPLICATE = "duplicate"


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
            f"cannot {action} ticket {ticket_id} in status {status!r}: {reason}"
        )


class InvalidPolicyError(MonitorError):
    """A policy value (trigger, rule, silence, window, SLA) is out of range.

    Attributes:
        reason: What is wrong.

    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _require_aware(moment: datetime | None, what: str) -> None:
    if moment is not None and (
        moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None
    ):
        raise InvalidPolicyError(f"{what} must be timezone-aware, got {moment!r}")


# --- rules, routing, SLA, silences, maintenance -------------------------------


@dataclass(frozen=True)
class AlertRule:
    """One rule on a watched topic, as the policy needs it.

    Attributes:
        name: Rule name, unique within its topic; part of the fingerprint.
        topic: The watched topic it applies to.
        kind: One of :data:`RULE_KINDS`.
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
    kind: str
    threshold: float
    window_seconds: int = 300
    min_volume: int = 0
    within_seconds: int = 0
    channels: tuple[str, ...] = ()
    team: str | None = None
    min_priority: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise InvalidPolicyError(f"unknown rule kind {self.kind!r}")
        if not self.threshold > 0:
            raise InvalidPolicyError(f"rule {self.name!r}: threshold must be > 0")
        if self.min_priority is not None and self.min_priority not in PRIORITIES:
            raise InvalidPolicyError(f"min_priority must be one of {PRIORITIES}")


@dataclass(frozen=True)
class Team:
    """People who take tickets, and whom to escalate to.

    Attributes:
        name: Team name.
        members: Owners who take tickets, in round-robin order.
        strategy: ``round_robin`` or ``least_loaded``.
        escalation: Contacts for escalation levels 1, 2, ...; the last one
            takes every level beyond the list.

    """

    name: str
    members: tuple[str, ...]
    strategy: str = ROUND_ROBIN
    escalation: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InvalidPolicyError(f"team {self.name!r}: unknown strategy")

    def escalation_contact(self, level: int) -> str | None:
        """Return the contact for an escalation level (1-based), if any."""
        if level < 1 or not self.escalation:
            return None
        return self.escalation[min(level, len(self.escalation)) - 1]


@dataclass(frozen=True)
class Routing:
    """Topic -> team, with a default team for topics nobody claimed.

    Attributes:
        teams: Every team by name.
        topic_teams: Team name per topic.
        default_team: Team for topics not in ``topic_teams``.

    """

    teams: Mapping[str, Team]
    topic_teams: Mapping[str, str] = field(default_factory=dict)
    default_team: str = "default"

    def team_for(self, topic: str, rule: AlertRule | None = None) -> Team:
        """Return the team for a topic (a rule's own team wins).

        A team name with no :class:`Team` behind it yields an empty team, so
        the ticket is created unassigned rather than lost.
        """
        name = (rule.team if rule else None) or self.topic_teams.get(
            topic, self.default_team
        )
        return self.teams.get(name) or Team(name=name, members=())


def choose_owner(team: Team, tickets: Iterable[Ticket]) -> str | None:
    """Pick the owner of a new ticket in a team.

    Args:
        team: The team taking the ticket.
        tickets: Known tickets (any status); only this team's are looked at.

    Returns:
        ``round_robin``: the member after the owner of the team's most
        recently opened ticket (the first member if there is none).
        ``least_loaded``: the member with the fewest active tickets, ties
        going to the earlier member. ``None`` if the team has no members.

    """
    if not team.members:
        return None
    own = [ticket for ticket in tickets if ticket.team == team.name]
    if team.strategy == LEAST_LOADED:
        load = dict.fromkeys(team.members, 0)
        for ticket in own:
            if ticket.status in ACTIVE_STATUSES and ticket.owner in load:
                load[ticket.owner] += 1
        return min(team.members, key=lambda member: load[member])
    assigned = [t for t in own if t.owner in team.members]
    if not assigned:
        return team.members[0]
    last = max(assigned, key=lambda t: (t.opened_at, t.sequence, t.ticket_id))
    return team.members[(team.members.index(last.owner or "") + 1) % len(team.members)]


def _default_ack() -> dict[str, timedelta]:
    return {
        "P1": timedelta(minutes=5),
        "P2": timedelta(minutes=15),
        "P3": timedelta(hours=1),
        "P4": timedelta(hours=4),
    }


def _default_resolve() -> dict[str, timedelta]:
    return {
        "P1": timedelta(hours=1),
        "P2": timedelta(hours=4),
        "P3": timedelta(hours=24),
        "P4": timedelta(hours=72),
    }


@dataclass(frozen=True)
class SlaPolicy:
    """Acknowledge and resolve deadlines per priority.

    Attributes:
        ack: Time from opening to acknowledgement, per priority.
        resolve: Time from opening to resolution, per priority.

    """

    ack: Mapping[str, timedelta] = field(default_factory=_default_ack)
    resolve: Mapping[str, timedelta] = field(default_factory=_default_resolve)

    def __post_init__(self) -> None:
        for name, table in (("ack", self.ack), ("resolve", self.resolve)):
            if set(table) != set(PRIORITIES):
                raise InvalidPolicyError(f"SLA {name} needs exactly {PRIORITIES}")
            if any(value <= timedelta(0) for value in table.values()):
                raise InvalidPolicyError(f"SLA {name} durations must be > 0")

    def dues(self, priority: str, start: datetime) -> tuple[datetime, datetime]:
        """Return ``(ack_due, resolve_due)`` for a ticket opened at ``start``."""
        return start + self.ack[priority], start + self.resolve[priority]


DEFAULT_SLA = SlaPolicy()


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
        _require_aware(self.starts_at, "silence start")
        _require_aware(self.expires_at, "silence expiry")
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
        _require_aware(self.starts_at, "maintenance start")
        _require_aware(self.ends_at, "maintenance end")
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
        kind: Rule kind (one of :data:`RULE_KINDS`).
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
    kind: str
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
        _require_aware(self.window_start, "window_start")
        _require_aware(self.window_end, "window_end")
        if self.window_end < self.window_start:
            raise InvalidPolicyError("trigger window ends before it starts")
        if self.kind not in RULE_KINDS:
            raise InvalidPolicyError(f"unknown rule kind {self.kind!r}")

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
        status: One of :data:`STATUSES`.
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
    status: str
    priority: str
    priority_reason: str
    topic: str
    rule: str
    kind: str
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
        action: What was done (``opened``, ``folded``, ``acknowledge``, ...).
        from_status: Status before (``None`` when the ticket was created).
        to_status: Status after.
        note: Why, in the actor's words or the policy's.
        details: Extra facts (old/new owner, priority, deadline, ...).

    """

    ticket_id: str
    event_id: str
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
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


# --- priority -----------------------------------------------------------------


def _ratio_points(ratio: float) -> int:
    return 3 if ratio >= 4 else 2 if ratio >= 2 else 1 if ratio >= 1.5 else 0


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _followers(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M".replace(".0M", "M")
    if count >= 1_000:
        return f"{count // 1_000}k"
    return str(count)


def _describe(trigger: Trigger, ratio: float) -> str:
    observed, threshold = trigger.observed_value, trigger.threshold
    times = f"{ratio:.1f}×"
    if trigger.kind == NEGATIVE_SHARE:
        text = f"negative share {observed:.0%} is {times} the threshold {threshold:.0%}"
    elif trigger.kind == BURST:
        text = f"burst score {observed:.1f} is {times} the threshold {threshold:g}"
    elif trigger.kind == EMERGING_KEYWORD:
        text = (
            f"new keyword {trigger.keyword!r} in {_number(observed)} posts is "
            f"{times} the threshold {_number(threshold)}"
        )
    elif trigger.kind == REPEAT_COMPLAINTS:
        text = (
            f"one author posted {_number(observed)} negative posts, {times} "
            f"the threshold {_number(threshold)}"
        )
    else:
        text = (
            f"negative volume {_number(observed)} is {times} the threshold "
            f"{_number(threshold)}"
        )
    if trigger.expected_value is not None:
        text += f" (baseline {_number(round(trigger.expected_value, 1))})"
    return text


def priority_score(trigger: Trigger) -> tuple[int, list[str]]:
    """Return the points of a trigger and the reasons behind them.

    See the module docstring for the table. Each reason ends with its points,
    e.g. ``"author with 120k followers (+2)"``.
    """
    ratio = trigger.observed_value / trigger.threshold if trigger.threshold else 1.0
    points = _ratio_points(ratio)
    reasons = [f"{_describe(trigger, ratio)} (+{points})"]
    burst = trigger.burst_score
    if trigger.kind != BURST and burst is not None and burst >= 5:
        gained = 2 if burst >= 8 else 1
        points += gained
        reasons.append(f"burst score {burst:.1f} (+{gained})")
    followers = trigger.author_followers
    if followers >= 10_000:
        gained = 3 if followers >= 1_000_000 else 2 if followers >= 100_000 else 1
        points += gained
        reasons.append(f"author with {_followers(followers)} followers (+{gained})")
    repeats = trigger.repeat_complaints
    if trigger.kind != REPEAT_COMPLAINTS and repeats >= 3:
        gained = 2 if repeats >= 5 else 1
        points += gained
        reasons.append(f"{repeats} complaints from one author (+{gained})")
    tier = (trigger.customer_tier or "").lower()
    if tier in CUSTOMER_TIER_POINTS:
        gained = CUSTOMER_TIER_POINTS[tier]
        points += gained
        reasons.append(f"{tier} customer (+{gained})")
    return points, reasons


def priority_for_points(points: int) -> str:
    """Map a score to ``P1`` (>= 6), ``P2`` (>= 4), ``P3`` (>= 2) or ``P4``."""
    return (
        "P1" if points >= 6 else "P2" if points >= 4 else "P3" if points >= 2 else "P4"
    )


def compute_priority(
    trigger: Trigger, rule: AlertRule | None = None
) -> tuple[str, str]:
    """Return the priority of a trigger and the reason, spelled out.

    Args:
        trigger: What fired.
        rule: Its rule; its ``min_priority`` (if any) is a floor.

    Returns:
        ``(priority, reason)``, e.g. ``("P2", "P2: negative volume 42 is 2.8×
        the threshold 15 (+2); author with 120k followers (+2); gold customer
        (+1); score 5")``.

    """
    points, reasons = priority_score(trigger)
    priority = priority_for_points(points)
    floor = rule.min_priority if rule else None
    if floor is not None and PRIORITIES.index(floor) < PRIORITIES.index(priority):
        reasons.append(f"raised from {priority} to the rule's minimum {floor}")
        priority = floor
    return priority, f"{priority}: " + "; ".join(reasons) + f"; score {points}"


def raise_priority(priority: str, levels: int = 1) -> str:
    """Return the priority ``levels`` steps more urgent, capped at ``P1``."""
    return PRIORITIES[max(0, PRIORITIES.index(priority) - levels)]


def _more_urgent(first: str, second: str) -> str:
    return min(first, second, key=PRIORITIES.index)


# --- events -------------------------------------------------------------------


def _event(
    before: Ticket | None,
    after: Ticket,
    *,
    action: str,
    actor: str,
    at: datetime,
    note: str,
    details: Mapping[str, Any] | None = None,
) -> tuple[Ticket, TicketEvent]:
    """Stamp the next revision on ``after`` and return it with its event."""
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


# --- lifecycle ----------------------------------------------------------------


def apply_action(
    ticket: Ticket,
    action: str,
    actor: str,
    now: datetime,
    note: str = "",
    *,
    sla: SlaPolicy = DEFAULT_SLA,
    routing: Routing | None = None,
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
        **params: ``owner`` and ``team`` for ``assign``/``transfer``.

    Returns:
        The new ticket and the event that records the change. The input is
        not modified.

    Raises:
        InvalidTransitionError: If the action is unknown, not allowed from
            the ticket's status, or lacks what it needs (a note, an owner).
        InvalidPolicyError: If ``now`` is naive.

    """
    _require_aware(now, "now")
    status = ticket.status

    def refuse(reason: str) -> InvalidTransitionError:
        return InvalidTransitionError(ticket.ticket_id, action, status, reason)

    if action not in ACTION_SOURCES:
        raise refuse(f"unknown action; expected one of {', '.join(ACTIONS)}")
    if status not in ACTION_SOURCES[action]:
        allowed = ", ".join(s for s in STATUSES if s in ACTION_SOURCES[action])
        raise refuse(f"{action} is only allowed from {allowed}")
    unexpected = set(params) - (
        {"owner", "team"} if action in {"assign", "transfer"} else set()
    )
    if unexpected:
        raise refuse(f"unexpected parameters {sorted(unexpected)}")
    details: dict[str, Any] = {}
    if action == "acknowledge":
        new = replace(ticket, status=ACKNOWLEDGED, acknowledged_at=now)
    elif action == "start":
        new = replace(
            ticket,
            status=IN_PROGRESS,
            started_at=now,
            acknowledged_at=ticket.acknowledged_at or now,
        )
    elif action == "resolve":
        new = replace(ticket, status=RESOLVED, resolved_at=now)
    elif action == "close":
        new = replace(ticket, status=CLOSED, closed_at=now)
    elif action == "reopen":
        if not note.strip():
            raise refuse("a person reopening a ticket must say why (note)")
        new = _reopened(ticket, now, sla)
        details["reopen_count"] = new.reopen_count
    elif action in {"assign", "transfer"}:
        owner, team = params.get("owner"), params.get("team")
        if action == "assign" and not owner:
            raise refuse("assign needs owner=")
        if action == "transfer" and not (owner or team):
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
    elif action == "escalate":
        new, details = _escalated(ticket, now, sla, routing, reset=("ack", "resolve"))
    else:
        if not note.strip():
            raise refuse("a comment needs a note")
        new = ticket
    return _event(
        ticket, new, action=action, actor=actor, at=now, note=note, details=details
    )


def _reopened(ticket: Ticket, now: datetime, sla: SlaPolicy) -> Ticket:
    ack_due, resolve_due = sla.dues(ticket.priority, now)
    return replace(
        ticket,
        status=OPEN,
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


_MAX_OPENED_TIMES = 32


def _escalated(
    ticket: Ticket,
    now: datetime,
    sla: SlaPolicy,
    routing: Routing | None,
    *,
    reset: tuple[str, ...],
) -> tuple[Ticket, dict[str, Any]]:
    """Raise one priority level and one escalation level.

    The deadlines named in ``reset`` restart at ``now`` with the new
    priority, so the next contact gets a full period; the others only
    tighten.
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
        "from_priority": ticket.priority,
        "to_priority": priority,
        "escalation_level": level,
        "escalation_contact": contact,
    }
    return new, details


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
    _require_aware(now, "now")
    delivery = {**ticket.delivery, channel: status}
    return _event(
        ticket,
        replace(ticket, delivery=delivery),
        action="delivery",
        actor=SYSTEM_ACTOR,
        at=now,
        note=note,
        details={"channel": channel, "status": status},
    )


# --- SLA ----------------------------------------------------------------------


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
    it (strictly). Pure: handling a breach is :meth:`TicketPolicy.enforce_sla`.
    """
    _require_aware(now, "now")
    breaches = []
    deadlines = []
    if ticket.status == OPEN:
        deadlines.append(("ack", ticket.ack_due))
    if ticket.is_active:
        deadlines.append(("resolve", ticket.resolve_due))
    for kind, due in deadlines:
        key = f"{kind}@{due.isoformat()}"
        if now > due and key not in ticket.sla_breaches:
            breaches.append(SlaBreach(ticket.ticket_id, kind, due, key))
    return breaches


# --- the policy ---------------------------------------------------------------


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

    outcome: str
    reason: str
    ticket: Ticket | None = None
    event: TicketEvent | None = None
    notify: bool = False


def merge_evidence(
    current: Sequence[Evidence], new: Iterable[Evidence], limit: int
) -> tuple[Evidence, ...]:
    """Return the ``limit`` most representative posts of both, without repeats.

    Most followers first, then most reposts, then earliest; a post id seen
    before keeps its first entry.
    """
    seen: dict[str, Evidence] = {}
    for item in (*current, *new):
        seen.setdefault(item.post_id, item)

    def rank(item: Evidence) -> tuple[int, int, float, str]:
        # Undated posts sort last among equals: they cannot be placed in time.
        published = item.published_at.timestamp() if item.published_at else float("inf")
        return (-item.followers, -item.reposts, published, item.post_id)

    return tuple(sorted(seen.values(), key=rank)[:limit])


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
        _require_aware(now, "now")
        tickets = list(tickets)
        for window in self.maintenance:
            if window.is_active(trigger.topic, trigger.window_start):
                return TicketDecision(
                    SUPPRESSED, f"suppressed by maintenance window {window.name}"
                )
        for silence in self.silences:
            if silence.matches(trigger, now):
                return TicketDecision(
                    SUPPRESSED,
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
        if latest is not None and latest.status == RESOLVED:
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
            escalated, details = _escalated(
                ticket, now, self.sla, self.routing, reset=(breach.kind,)
            )
            escalated = replace(
                escalated, sla_breaches=ticket.sla_breaches | {breach.key}
            )
            details.update(deadline=breach.kind, due=breach.due.isoformat())
            ticket, event = _event(
                ticket,
                escalated,
                action="sla_breach",
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
                DUPLICATE,
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
                f"value grew {growth:.0%} to {_number(trigger.observed_value)} from "
                f"{_number(ticket.growth_reference)}"
            )
            new = replace(new, growth_reference=trigger.observed_value)
        if new.occurrences % self.settings.escalate_every == 0:
            why.append(f"{new.occurrences} occurrences")
        priority = raise_priority(ticket.priority) if why else ticket.priority
        computed, computed_reason = compute_priority(trigger, self._rule(trigger))
        if PRIORITIES.index(computed) < PRIORITIES.index(priority):
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
            details.update(from_priority=ticket.priority, to_priority=priority)
        note = f"occurrence {new.occurrences}" + (
            f"; priority {ticket.priority} -> {priority}: " + "; ".join(why)
            if raised
            else ""
        )
        new, event = _event(
            ticket,
            new,
            action="fold",
            actor=SYSTEM_ACTOR,
            at=now,
            note=note,
            details=details,
        )
        return TicketDecision(
            FOLDED, f"folded into {ticket.ticket_id}", new, event, notify=raised
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
        new, event = _event(
            ticket,
            new,
            action="hold",
            actor=SYSTEM_ACTOR,
            at=now,
            note=reason,
            details={"opens": opens, "occurrences": new.occurrences},
        )
        return TicketDecision(HELD, reason, new, event)

    def _reopen(
        self, ticket: Ticket, trigger: Trigger, now: datetime
    ) -> TicketDecision:
        assert ticket.resolved_at is not None
        since = now - ticket.resolved_at
        new = self._observe(_reopened(ticket, now, self.sla), trigger)
        new = replace(new, growth_reference=trigger.observed_value)
        note = f"fired again {since} after it was resolved (cool-down " + (
            f"{self.settings.cooldown})"
        )
        new, event = _event(
            ticket,
            new,
            action="reopen",
            actor=SYSTEM_ACTOR,
            at=now,
            note=note,
            details={"reopen_count": new.reopen_count},
        )
        return TicketDecision(
            REOPENED, f"reopened {ticket.ticket_id}", new, event, notify=True
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
            status=OPEN,
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
        ticket, event = _event(
            None,
            ticket,
            action="open",
            actor=SYSTEM_ACTOR,
            at=now,
            note=note,
            details={"team": team.name, "owner": owner, "priority": priority},
        )
        return TicketDecision(OPENED, f"opened {ticket_id}", ticket, event, notify=True)
