"""Alert tickets (预警工单): pure policy, lifecycle and codec.

One module per concept, in the order a trigger meets them:

- :mod:`~monitor.analysis.tickets.model`: vocabularies (``StrEnum`` s),
  errors, and the data types (rules, triggers, evidence, tickets, events);
- :mod:`~monitor.analysis.tickets.silences`: silences and maintenance windows;
- :mod:`~monitor.analysis.tickets.priority`: points and P1-P4;
- :mod:`~monitor.analysis.tickets.routing`: topic -> team -> owner;
- :mod:`~monitor.analysis.tickets.sla`: deadlines, breaches, escalation;
- :mod:`~monitor.analysis.tickets.evidence`: which posts a ticket keeps;
- :mod:`~monitor.analysis.tickets.lifecycle`: people's actions and events;
- :mod:`~monitor.analysis.tickets.policy`: :class:`TicketPolicy` deciding
  what a trigger does;
- :mod:`~monitor.analysis.tickets.codec`: the one JSON form of all of them.

New code imports from those modules; the names below are re-exported for
code written against the single module this package replaced.
"""

from __future__ import annotations

from monitor.analysis.tickets.evidence import merge_evidence
from monitor.analysis.tickets.lifecycle import (
    ACTION_SOURCES,
    ACTIONS,
    apply_action,
    record_delivery,
)
from monitor.analysis.tickets.model import (
    ACKNOWLEDGED,
    ACTIVE_STATUSES,
    BURST,
    CLOSED,
    EMERGING_KEYWORD,
    HOT_WORD,
    IN_PROGRESS,
    NEGATIVE_SHARE,
    NEGATIVE_VOLUME,
    OPEN,
    PRIORITIES,
    REPEAT_COMPLAINTS,
    RESOLVED,
    RULE_KINDS,
    STATUSES,
    SYSTEM_ACTOR,
    AlertRule,
    Evidence,
    InvalidPolicyError,
    InvalidTransitionError,
    Observation,
    Priority,
    RuleKind,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketStatus,
    Trigger,
    default_ticket_id,
    fingerprint,
)
from monitor.analysis.tickets.policy import (
    DUPLICATE,
    FOLDED,
    HELD,
    OPENED,
    REOPENED,
    SUPPRESSED,
    Outcome,
    TicketDecision,
    TicketPolicy,
    TicketSettings,
)
from monitor.analysis.tickets.priority import (
    CUSTOMER_TIER_POINTS,
    compute_priority,
    priority_for_points,
    priority_score,
    raise_priority,
)
from monitor.analysis.tickets.routing import (
    STRATEGIES,
    Routing,
    Strategy,
    Team,
    choose_owner,
)
from monitor.analysis.tickets.silences import MaintenanceWindow, Silence
from monitor.analysis.tickets.sla import (
    DEFAULT_SLA,
    SlaBreach,
    SlaPolicy,
    check_sla,
)

__all__ = [
    "ACKNOWLEDGED",
    "ACTIONS",
    "ACTION_SOURCES",
    "ACTIVE_STATUSES",
    "BURST",
    "CLOSED",
    "CUSTOMER_TIER_POINTS",
    "DEFAULT_SLA",
    "DUPLICATE",
    "EMERGING_KEYWORD",
    "HOT_WORD",
    "FOLDED",
    "HELD",
    "IN_PROGRESS",
    "NEGATIVE_SHARE",
    "NEGATIVE_VOLUME",
    "OPEN",
    "OPENED",
    "PRIORITIES",
    "REOPENED",
    "REPEAT_COMPLAINTS",
    "RESOLVED",
    "RULE_KINDS",
    "STATUSES",
    "STRATEGIES",
    "SUPPRESSED",
    "SYSTEM_ACTOR",
    "AlertRule",
    "Evidence",
    "InvalidPolicyError",
    "InvalidTransitionError",
    "MaintenanceWindow",
    "Observation",
    "Outcome",
    "Priority",
    "Routing",
    "RuleKind",
    "Silence",
    "SlaBreach",
    "SlaPolicy",
    "Strategy",
    "Team",
    "Ticket",
    "TicketAction",
    "TicketDecision",
    "TicketEvent",
    "TicketPolicy",
    "TicketSettings",
    "TicketStatus",
    "Trigger",
    "apply_action",
    "check_sla",
    "choose_owner",
    "compute_priority",
    "default_ticket_id",
    "fingerprint",
    "merge_evidence",
    "priority_for_points",
    "priority_score",
    "raise_priority",
    "record_delivery",
]
