"""The one JSON codec of tickets, events, silences, triggers and evidence.

Every ``*_to_dict`` returns JSON-ready values (times as ISO 8601 with their
offset, vocabularies as their plain text) and its ``*_from_dict`` gives back
an equal value; unknown keys are ignored. The results are the Elasticsearch
documents, the API bodies and the messages on the trigger topic alike, so
this module is the only place that spells the fields out.

Top-level values (tickets, events, silences, triggers) carry
``"schema": SCHEMA_VERSION``. A value without it was written before the field
existed and is read as version 1; a newer version than this code knows raises
:class:`UnsupportedSchemaError` instead of being misread.

Version 2 added incidents (a ticket's ``group_key``, ``signals``,
``seen_signals``, ``linked``), the outbox (``outbox``, ``last_notice_at``,
``notices``), a trigger's ``signal_id``, ``provisional``, ``retracted`` and
crossing post, and a silence's ``clock``. Every one of them is optional on
reading, so version 1 values read as before; a version 1 reader refuses
version 2 tickets rather than rewrite one without its outbox. The notice
clock's ``notice_event_time`` and ``held_updates`` came later within version
2, optional on reading too (a ticket written before them reads as never told
in event time, nothing held).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

from monitor.analysis.tickets.model import (
    Evidence,
    Notice,
    Observation,
    Priority,
    Review,
    RuleKind,
    Signal,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketStatus,
    Trigger,
)
from monitor.analysis.tickets.silences import Silence
from monitor.errors import MonitorError

#: Version of the values this codec writes; it reads every version up to it.
SCHEMA_VERSION = 2
#: Key of the version in each top-level value.
SCHEMA_FIELD = "schema"

#: Ticket fields that are times, always set.
TICKET_TIMES = ("first_seen", "last_seen", "opened_at", "ack_due", "resolve_due")
#: Ticket fields that are times, ``None`` until the step happens.
TICKET_OPTIONAL_TIMES = ("acknowledged_at", "started_at", "resolved_at", "closed_at")
#: Ticket fields that are floats, always set.
TICKET_FLOATS = ("threshold", "opening_value", "growth_reference", "peak_value")
#: Ticket fields stored as they are (text, numbers, booleans).
TICKET_PLAIN = (
    "ticket_id",
    "fingerprint",
    "sequence",
    "status",
    "priority",
    "priority_reason",
    "topic",
    "rule",
    "kind",
    "keyword",
    "team",
    "owner",
    "occurrences",
    "escalation_level",
    "escalation_contact",
    "reopen_count",
    "flapping",
    "revision",
)
#: Ticket fields added in schema version 2, with their defaults.
_TICKET_V2_PLAIN: dict[str, Any] = {
    "group_key": None,
    "notices": 0,
    "held_updates": 0,
}
_TICKET_VOCABULARY = ("status", "priority", "kind")
_TRIGGER_PLAIN = (
    "topic",
    "rule",
    "kind",
    "keyword",
    "observed_value",
    "threshold",
    "expected_value",
    "burst_score",
    "author_followers",
    "repeat_complaints",
    "customer_tier",
)


class UnsupportedSchemaError(MonitorError):
    """A stored value was written by a newer (or unknown) codec version.

    Attributes:
        what: What the value is (``ticket``, ``event``, ``silence``,
            ``trigger``).
        version: The version found in it.

    """

    def __init__(self, what: str, version: object) -> None:
        self.what = what
        self.version = version
        super().__init__(
            f"{what} has schema version {version!r}; this monitor reads versions "
            f"1 to {SCHEMA_VERSION}: upgrade it before reading this data"
        )


def _versioned(data: dict[str, Any]) -> dict[str, Any]:
    data[SCHEMA_FIELD] = SCHEMA_VERSION
    return data


def _check_version(data: Mapping[str, Any], what: str) -> None:
    version = data.get(SCHEMA_FIELD, 1)
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= SCHEMA_VERSION
    ):
        raise UnsupportedSchemaError(what, version)


def _time(value: datetime) -> str:
    return value.isoformat()


def _opt_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _opt_parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_text(value: str | None) -> str | None:
    return None if value is None else str(value)


# --- evidence and observations (parts of tickets and triggers) -----------------


def evidence_to_dict(item: Evidence) -> dict[str, Any]:
    """Encode one evidence post as JSON-ready values."""
    return {
        "post_id": item.post_id,
        "excerpt": item.excerpt,
        "followers": item.followers,
        "reposts": item.reposts,
        "published_at": _opt_time(item.published_at),
        "author": item.author,
        "url": item.url,
    }


def evidence_from_dict(data: Mapping[str, Any]) -> Evidence:
    """Decode what :func:`evidence_to_dict` produced.

    Missing counts are 0 and missing optional fields ``None``, as in
    :class:`~monitor.analysis.tickets.model.Evidence`.
    """
    return Evidence(
        post_id=data["post_id"],
        excerpt=data["excerpt"],
        followers=int(data.get("followers", 0)),
        reposts=int(data.get("reposts", 0)),
        published_at=_opt_parse(data.get("published_at")),
        author=data.get("author"),
        url=data.get("url"),
    )


def _observation_to_dict(item: Observation) -> dict[str, Any]:
    return {
        "window_start": _time(item.window_start),
        "window_end": _time(item.window_end),
        "observed_value": item.observed_value,
        "expected_value": item.expected_value,
    }


def _observation_from_dict(data: Mapping[str, Any]) -> Observation:
    return Observation(
        window_start=_parse(data["window_start"]),
        window_end=_parse(data["window_end"]),
        observed_value=float(data["observed_value"]),
        expected_value=_opt_float(data.get("expected_value")),
    )


def _signal_to_dict(item: Signal) -> dict[str, Any]:
    return {
        "rule": item.rule,
        "kind": str(item.kind),
        "keyword": item.keyword,
        "first_fired": _time(item.first_fired),
        "first_window_start": _time(item.first_window_start),
        "last_window_end": _time(item.last_window_end),
        "last_value": item.last_value,
        "peak_value": item.peak_value,
        "threshold": item.threshold,
        "baseline": item.baseline,
        "priority": str(item.priority),
        "occurrences": item.occurrences,
        "signal_id": item.signal_id,
        "provisional": item.provisional,
        "retracted": item.retracted,
        "growth_reference": item.growth_reference,
    }


def _signal_from_dict(data: Mapping[str, Any]) -> Signal:
    return Signal(
        rule=data["rule"],
        kind=RuleKind(data["kind"]),
        keyword=data.get("keyword"),
        first_fired=_parse(data["first_fired"]),
        first_window_start=_parse(data["first_window_start"]),
        last_window_end=_parse(data["last_window_end"]),
        last_value=float(data["last_value"]),
        peak_value=float(data.get("peak_value", data["last_value"])),
        threshold=float(data["threshold"]),
        baseline=_opt_float(data.get("baseline")),
        priority=Priority(data["priority"]),
        occurrences=int(data.get("occurrences", 1)),
        signal_id=data.get("signal_id", ""),
        provisional=bool(data.get("provisional", False)),
        retracted=bool(data.get("retracted", False)),
        growth_reference=float(data.get("growth_reference", data["last_value"])),
    )


def notice_to_dict(item: Notice) -> dict[str, Any]:
    """Encode an outbox notice as JSON-ready values."""
    return {
        "notice_id": item.notice_id,
        "kind": str(item.kind),
        "priority": str(item.priority),
        "created_at": _time(item.created_at),
        "due_at": _time(item.due_at),
        "channels": list(item.channels),
        "event_id": item.event_id,
        "folded": item.folded,
        "attempts": item.attempts,
        "last_error": item.last_error,
        "crossing_received_at": _opt_time(item.crossing_received_at),
        "accepted": list(item.accepted),
        "reached": list(item.reached),
    }


def notice_from_dict(data: Mapping[str, Any]) -> Notice:
    """Decode what :func:`notice_to_dict` produced."""
    return Notice(
        notice_id=data["notice_id"],
        kind=data["kind"],
        priority=data["priority"],
        created_at=_parse(data["created_at"]),
        due_at=_parse(data["due_at"]),
        channels=tuple(data.get("channels", ())),
        event_id=data.get("event_id"),
        folded=int(data.get("folded", 0)),
        attempts=int(data.get("attempts", 0)),
        last_error=data.get("last_error", ""),
        crossing_received_at=_opt_parse(data.get("crossing_received_at")),
        accepted=tuple(data.get("accepted", ())),
        reached=tuple(str(v) for v in data.get("reached", ())),
    )


# --- tickets --------------------------------------------------------------------


def ticket_to_dict(ticket: Ticket) -> dict[str, Any]:
    """Encode a ticket as JSON-ready values (times as ISO 8601 with offset).

    :func:`ticket_from_dict` gives back an equal ticket. The result is also
    the ticket's Elasticsearch document and its form in the API.
    """
    data: dict[str, Any] = {name: getattr(ticket, name) for name in TICKET_PLAIN}
    for name in _TICKET_VOCABULARY:
        data[name] = str(data[name])
    for name in TICKET_TIMES:
        data[name] = _time(getattr(ticket, name))
    for name in TICKET_OPTIONAL_TIMES:
        data[name] = _opt_time(getattr(ticket, name))
    for name in TICKET_FLOATS:
        data[name] = getattr(ticket, name)
    data["expected_value"] = ticket.expected_value
    data["evidence"] = [evidence_to_dict(item) for item in ticket.evidence]
    data["keywords"] = list(ticket.keywords)
    data["history"] = [_observation_to_dict(item) for item in ticket.history]
    data["opened_times"] = [_time(moment) for moment in ticket.opened_times]
    data["sla_breaches"] = sorted(ticket.sla_breaches)
    data["delivery"] = dict(ticket.delivery)
    data["channels"] = list(ticket.channels)
    for name in _TICKET_V2_PLAIN:
        data[name] = getattr(ticket, name)
    data["signals"] = [_signal_to_dict(item) for item in ticket.signals]
    data["seen_signals"] = list(ticket.seen_signals)
    data["linked"] = list(ticket.linked)
    data["outbox"] = [notice_to_dict(item) for item in ticket.outbox]
    data["last_notice_at"] = _opt_time(ticket.last_notice_at)
    data["notice_event_time"] = _opt_time(ticket.notice_event_time)
    data["review"] = _review_to_dict(ticket.review)
    return _versioned(data)


def ticket_from_dict(data: Mapping[str, Any]) -> Ticket:
    """Decode what :func:`ticket_to_dict` produced; unknown keys are ignored.

    Raises:
        UnsupportedSchemaError: If it was written by a newer schema version.
        KeyError: If a required field is missing.
        ValueError: If a time is not ISO 8601, or a status, priority or kind
            is unknown.

    """
    _check_version(data, "ticket")
    values: dict[str, Any] = {name: data[name] for name in TICKET_PLAIN}
    values["status"] = TicketStatus(data["status"])
    values["priority"] = Priority(data["priority"])
    values["kind"] = RuleKind(data["kind"])
    for name in TICKET_TIMES:
        values[name] = _parse(data[name])
    for name in TICKET_OPTIONAL_TIMES:
        values[name] = _opt_parse(data.get(name))
    for name in TICKET_FLOATS:
        values[name] = float(data[name])
    values["expected_value"] = _opt_float(data.get("expected_value"))
    values["evidence"] = tuple(evidence_from_dict(item) for item in data["evidence"])
    values["keywords"] = tuple(data["keywords"])
    values["history"] = tuple(_observation_from_dict(item) for item in data["history"])
    values["opened_times"] = tuple(_parse(item) for item in data["opened_times"])
    values["sla_breaches"] = frozenset(data["sla_breaches"])
    values["delivery"] = dict(data["delivery"])
    values["channels"] = tuple(data["channels"])
    for name, default in _TICKET_V2_PLAIN.items():
        values[name] = data.get(name, default)
    values["signals"] = tuple(
        _signal_from_dict(item) for item in data.get("signals", ())
    )
    values["seen_signals"] = tuple(data.get("seen_signals", ()))
    values["linked"] = tuple(data.get("linked", ()))
    values["outbox"] = tuple(notice_from_dict(item) for item in data.get("outbox", ()))
    values["last_notice_at"] = _opt_parse(data.get("last_notice_at"))
    values["notice_event_time"] = _opt_parse(data.get("notice_event_time"))
    values["review"] = _review_from_dict(data.get("review"))
    return Ticket(**values)


def _review_to_dict(review: Review | None) -> dict[str, Any] | None:
    if review is None:
        return None
    return {
        "root_cause": review.root_cause,
        "resolution": review.resolution,
        "lessons": review.lessons,
        "author": review.author,
        "at": _time(review.at),
    }


def _review_from_dict(data: Mapping[str, Any] | None) -> Review | None:
    if not data:
        return None
    return Review(
        root_cause=data["root_cause"],
        resolution=data["resolution"],
        lessons=data["lessons"],
        author=data["author"],
        at=_parse(data["at"]),
    )


# --- events ---------------------------------------------------------------------


def event_to_dict(event: TicketEvent) -> dict[str, Any]:
    """Encode an audit event as JSON-ready values; ``details`` must be JSON."""
    return _versioned(
        {
            "ticket_id": event.ticket_id,
            "event_id": event.event_id,
            "at": _time(event.at),
            "actor": event.actor,
            "action": str(event.action),
            "from_status": _opt_text(event.from_status),
            "to_status": str(event.to_status),
            "note": event.note,
            "details": dict(event.details),
        }
    )


def event_from_dict(data: Mapping[str, Any]) -> TicketEvent:
    """Decode what :func:`event_to_dict` produced; unknown keys are ignored.

    Raises:
        UnsupportedSchemaError: If it was written by a newer schema version.
        ValueError: If the action or a status is unknown.

    """
    _check_version(data, "event")
    from_status = data.get("from_status")
    return TicketEvent(
        ticket_id=data["ticket_id"],
        event_id=data["event_id"],
        at=_parse(data["at"]),
        actor=data["actor"],
        action=TicketAction(data["action"]),
        from_status=None if from_status is None else TicketStatus(from_status),
        to_status=TicketStatus(data["to_status"]),
        note=data.get("note", ""),
        details=dict(data.get("details") or {}),
    )


# --- silences -------------------------------------------------------------------


def silence_to_dict(silence: Silence) -> dict[str, Any]:
    """Encode a silence as JSON-ready values."""
    data = {item.name: getattr(silence, item.name) for item in fields(silence)}
    data["starts_at"] = _time(silence.starts_at)
    data["expires_at"] = _time(silence.expires_at)
    data["clock"] = str(silence.clock)
    return _versioned(data)


def silence_from_dict(data: Mapping[str, Any]) -> Silence:
    """Decode what :func:`silence_to_dict` produced.

    Raises:
        UnsupportedSchemaError: If it was written by a newer schema version.
        InvalidPolicyError: If the silence is not valid.

    """
    _check_version(data, "silence")
    return Silence(
        silence_id=data["silence_id"],
        starts_at=_parse(data["starts_at"]),
        expires_at=_parse(data["expires_at"]),
        author=data["author"],
        reason=data["reason"],
        topic=data.get("topic"),
        keyword=data.get("keyword"),
        rule=data.get("rule"),
        clock=data.get("clock", "event"),
    )


# --- triggers -------------------------------------------------------------------


def trigger_to_dict(trigger: Trigger) -> dict[str, Any]:
    """Encode a trigger as JSON-ready values (times as ISO 8601 with offset)."""
    data = {name: getattr(trigger, name) for name in _TRIGGER_PLAIN}
    data["kind"] = str(trigger.kind)
    data["window_start"] = _time(trigger.window_start)
    data["window_end"] = _time(trigger.window_end)
    data["keywords"] = list(trigger.keywords)
    data["evidence"] = [evidence_to_dict(item) for item in trigger.evidence]
    data["signal_id"] = trigger.signal_id
    data["provisional"] = trigger.provisional
    data["retracted"] = trigger.retracted
    data["crossing_post_id"] = trigger.crossing_post_id
    data["crossing_published_at"] = _opt_time(trigger.crossing_published_at)
    data["crossing_received_at"] = _opt_time(trigger.crossing_received_at)
    return _versioned(data)


def trigger_from_dict(data: Mapping[str, Any]) -> Trigger:
    """Decode what :func:`trigger_to_dict` produced; unknown keys are ignored.

    Raises:
        UnsupportedSchemaError: If it was written by a newer schema version.
        KeyError: If a required field is missing.
        InvalidPolicyError: If the trigger is not valid (unknown kind,
            naive times, window ending before it starts).

    """
    _check_version(data, "trigger")
    return Trigger(
        topic=data["topic"],
        rule=data["rule"],
        kind=data["kind"],
        keyword=data["keyword"],
        window_start=_parse(data["window_start"]),
        window_end=_parse(data["window_end"]),
        observed_value=data["observed_value"],
        threshold=data["threshold"],
        expected_value=data.get("expected_value"),
        burst_score=data.get("burst_score"),
        author_followers=data.get("author_followers", 0),
        repeat_complaints=data.get("repeat_complaints", 0),
        customer_tier=data.get("customer_tier"),
        evidence=tuple(evidence_from_dict(item) for item in data.get("evidence", ())),
        keywords=tuple(data.get("keywords", ())),
        signal_id=data.get("signal_id"),
        provisional=bool(data.get("provisional", False)),
        retracted=bool(data.get("retracted", False)),
        crossing_post_id=data.get("crossing_post_id"),
        crossing_published_at=_opt_parse(data.get("crossing_published_at")),
        crossing_received_at=_opt_parse(data.get("crossing_received_at")),
    )
