"""The ticket JSON codec: every value survives a round trip; versions are checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.tickets.codec import (
    SCHEMA_FIELD,
    SCHEMA_VERSION,
    UnsupportedSchemaError,
    event_from_dict,
    event_to_dict,
    evidence_from_dict,
    evidence_to_dict,
    silence_from_dict,
    silence_to_dict,
    ticket_from_dict,
    ticket_to_dict,
    trigger_from_dict,
    trigger_to_dict,
)
from monitor.analysis.tickets.lifecycle import ACTIONS, apply_action, record_delivery
from monitor.analysis.tickets.model import (
    PRIORITIES,
    RULE_KINDS,
    STATUSES,
    Evidence,
    Observation,
    Ticket,
    TicketEvent,
    Trigger,
)
from monitor.analysis.tickets.policy import TicketPolicy
from monitor.analysis.tickets.silences import Silence
from monitor.sinks.elasticsearch.templates import (
    EVENT_MAPPING,
    SILENCE_MAPPING,
    TICKET_MAPPING,
    events_index,
    ticket_index_templates,
)
from monitor.sinks.elasticsearch.tickets import event_revision

zones = st.sampled_from(
    [
        timezone.utc,
        timezone(timedelta(hours=8)),
        timezone(timedelta(hours=-5, minutes=-30)),
        timezone(timedelta(hours=14)),
    ]
)
# hypothesis takes naive bounds and attaches ``timezones`` itself.
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=zones,
)
texts = st.text(max_size=30)
names = st.text(min_size=1, max_size=12)
counts = st.integers(min_value=0, max_value=2**53)
values = st.floats(allow_nan=False, allow_infinity=False, width=64)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | values | texts

evidence = st.builds(
    Evidence,
    post_id=names,
    excerpt=texts,
    followers=counts,
    reposts=counts,
    published_at=st.none() | moments,
    author=st.none() | names,
    url=st.none() | texts,
)
observations = st.builds(
    Observation,
    window_start=moments,
    window_end=moments,
    observed_value=values,
    expected_value=st.none() | values,
)
tickets = st.builds(
    Ticket,
    ticket_id=names,
    fingerprint=names,
    sequence=st.integers(1, 10_000),
    status=st.sampled_from(STATUSES),
    priority=st.sampled_from(PRIORITIES),
    priority_reason=texts,
    topic=names,
    rule=names,
    kind=st.sampled_from(RULE_KINDS),
    keyword=st.none() | names,
    team=names,
    owner=st.none() | names,
    occurrences=counts,
    first_seen=moments,
    last_seen=moments,
    opened_at=moments,
    ack_due=moments,
    resolve_due=moments,
    threshold=values,
    opening_value=values,
    growth_reference=values,
    peak_value=values,
    acknowledged_at=st.none() | moments,
    started_at=st.none() | moments,
    resolved_at=st.none() | moments,
    closed_at=st.none() | moments,
    escalation_level=st.integers(0, 20),
    escalation_contact=st.none() | names,
    expected_value=st.none() | values,
    evidence=st.lists(evidence, max_size=3).map(tuple),
    keywords=st.lists(names, max_size=4).map(tuple),
    history=st.lists(observations, max_size=3).map(tuple),
    reopen_count=st.integers(0, 50),
    opened_times=st.lists(moments, max_size=3).map(tuple),
    flapping=st.booleans(),
    sla_breaches=st.frozensets(texts, max_size=3),
    delivery=st.dictionaries(names, names, max_size=3),
    channels=st.lists(names, max_size=3).map(tuple),
    revision=st.integers(0, 10_000),
)
events = st.builds(
    TicketEvent,
    ticket_id=names,
    event_id=st.builds(lambda t, n: f"{t}#{n}", names, st.integers(1, 999)),
    at=moments,
    actor=names,
    action=st.sampled_from((*ACTIONS, "open", "fold", "delivery", "sla_breach")),
    from_status=st.none() | st.sampled_from(STATUSES),
    to_status=st.sampled_from(STATUSES),
    note=texts,
    details=st.dictionaries(names, json_scalars, max_size=4),
)


def through_json(data: dict[str, object]) -> dict[str, object]:
    """What Elasticsearch or an HTTP client gives back."""
    return json.loads(json.dumps(data, ensure_ascii=False))


@settings(max_examples=150, deadline=None)
@given(tickets)
def test_ticket_round_trips_through_json(ticket: Ticket) -> None:
    decoded = ticket_from_dict(through_json(ticket_to_dict(ticket)))
    assert decoded == ticket
    # Equal instants are not enough: the offset the time was written in stays.
    assert decoded.opened_at.utcoffset() == ticket.opened_at.utcoffset()


@settings(max_examples=150, deadline=None)
@given(events)
def test_event_round_trips_through_json(event: TicketEvent) -> None:
    assert event_from_dict(through_json(event_to_dict(event))) == event


@given(
    start=moments,
    length=st.integers(1, 10**7),
    topic=st.none() | names,
    keyword=st.none() | names,
)
def test_silence_round_trips_through_json(
    start: datetime, length: int, topic: str | None, keyword: str | None
) -> None:
    silence = Silence(
        "S-1",
        start,
        start + timedelta(seconds=length),
        "小李",
        "已知",
        topic or "t",
        keyword,
    )
    assert silence_from_dict(through_json(silence_to_dict(silence))) == silence


def test_a_policy_made_ticket_round_trips_with_its_events() -> None:
    cst = timezone(timedelta(hours=8))
    start = datetime(2026, 11, 20, 13, 0, tzinfo=cst)
    trigger = Trigger(
        "空调异味",
        "负面声量",
        "negative_volume",
        None,
        start,
        start + timedelta(minutes=5),
        42.0,
        10.0,
        expected_value=1.5,
        evidence=(Evidence("p1", "空调有股怪味", 120_000, 3, start, "u1", "http://x"),),
        keywords=("空调", "异味"),
    )
    decision = TicketPolicy().decide(trigger, [], start + timedelta(minutes=5))
    assert decision.ticket is not None and decision.event is not None
    ticket, acked = apply_action(decision.ticket, "acknowledge", "王工", start)
    ticket, delivered = record_delivery(ticket, "hook", "failed", start, "HTTP 500")
    assert ticket_from_dict(through_json(ticket_to_dict(ticket))) == ticket
    for event in (decision.event, acked, delivered):
        assert event_from_dict(through_json(event_to_dict(event))) == event
    assert [event_revision(e) for e in (decision.event, acked, delivered)] == [1, 2, 3]


def test_mappings_are_strict_and_cover_every_encoded_field() -> None:
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
    trigger = Trigger("t", "r", "burst", "k", moment, moment, 5.0, 4.0)
    ticket = TicketPolicy().decide(trigger, [], moment).ticket
    assert ticket is not None
    ticket_doc = ticket_to_dict(ticket)
    assert TICKET_MAPPING["dynamic"] == EVENT_MAPPING["dynamic"] == "strict"
    assert set(ticket_doc) <= set(TICKET_MAPPING["properties"])
    store_only = {"recent_events", "outbox_due_at"}
    assert set(ticket_doc) | store_only == set(TICKET_MAPPING["properties"])
    assert TICKET_MAPPING["properties"]["status"] == {
        "type": "keyword",
        "ignore_above": 256,
    }
    assert TICKET_MAPPING["properties"]["opened_at"] == {"type": "date"}
    assert TICKET_MAPPING["properties"]["flapping"] == {"type": "boolean"}
    templates = ticket_index_templates("acme")
    assert sorted(p for t in templates.values() for p in t["index_patterns"]) == [
        "acme-silences",
        "acme-ticket-events-*",
        "acme-tickets",
    ]


def test_events_are_indexed_by_utc_month() -> None:
    late = datetime(2026, 12, 1, 2, 0, tzinfo=timezone(timedelta(hours=8)))
    assert events_index("acme", late) == "acme-ticket-events-2026.11"


# --- evidence and triggers ------------------------------------------------------

triggers = st.builds(
    Trigger,
    topic=names,
    rule=names,
    kind=st.sampled_from(RULE_KINDS),
    keyword=st.none() | names,
    window_start=st.just(datetime(2026, 11, 20, 5, 0, tzinfo=timezone.utc)),
    window_end=st.just(
        datetime(2026, 11, 20, 13, 5, tzinfo=timezone(timedelta(hours=8)))
    ),
    observed_value=values,
    threshold=st.floats(min_value=1e-6, max_value=1e9),
    expected_value=st.none() | values,
    burst_score=st.none() | values,
    author_followers=counts,
    repeat_complaints=st.integers(0, 10**4),
    customer_tier=st.none() | st.sampled_from(["vip", "gold"]),
    evidence=st.lists(evidence, max_size=3).map(tuple),
    keywords=st.lists(names, max_size=4).map(tuple),
)


@given(evidence)
def test_evidence_round_trips_through_json(item: Evidence) -> None:
    assert evidence_from_dict(through_json(evidence_to_dict(item))) == item


def test_evidence_without_counts_reads_them_as_zero() -> None:
    assert evidence_from_dict({"post_id": "p1", "excerpt": "x"}) == Evidence("p1", "x")


@settings(max_examples=100, deadline=None)
@given(triggers)
def test_trigger_round_trips_through_json(trigger: Trigger) -> None:
    decoded = trigger_from_dict(through_json(trigger_to_dict(trigger)))
    assert decoded == trigger
    assert decoded.window_end.utcoffset() == trigger.window_end.utcoffset()
    assert decoded.fingerprint == trigger.fingerprint


# --- vocabularies stay plain text -------------------------------------------------


def _policy_values() -> tuple[Ticket, TicketEvent, Silence, Trigger]:
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
    trigger = Trigger("t", "r", "burst", "k", moment, moment, 5.0, 4.0)
    decision = TicketPolicy().decide(trigger, [], moment)
    assert decision.ticket is not None and decision.event is not None
    silence = Silence("S-1", moment, moment + timedelta(hours=1), "a", "b", "t")
    return decision.ticket, decision.event, silence, trigger


def test_vocabularies_are_encoded_as_exact_strings() -> None:
    ticket, event, _, trigger = _policy_values()
    ticket_doc, event_doc = ticket_to_dict(ticket), event_to_dict(event)
    encoded = [
        ticket_doc["status"],
        ticket_doc["priority"],
        ticket_doc["kind"],
        event_doc["action"],
        event_doc["to_status"],
        trigger_to_dict(trigger)["kind"],
    ]
    assert encoded == ["open", "P4", "burst", "open", "open", "burst"]
    assert {type(value) for value in encoded} == {str}
    assert '"status": "open"' in json.dumps(ticket_doc)


# --- schema versions ----------------------------------------------------------------


def _sample(what: str) -> object:
    ticket, event, silence, trigger = _policy_values()
    return {"ticket": ticket, "event": event, "silence": silence, "trigger": trigger}[
        what
    ]


_CODECS: list[tuple[str, Callable[[Any], dict[str, Any]], Callable[[Any], Any]]] = [
    ("ticket", ticket_to_dict, ticket_from_dict),
    ("event", event_to_dict, event_from_dict),
    ("silence", silence_to_dict, silence_from_dict),
    ("trigger", trigger_to_dict, trigger_from_dict),
]


@pytest.mark.parametrize(("what", "encode", "decode"), _CODECS, ids=lambda v: v)
def test_each_value_carries_the_schema_version(
    what: str,
    encode: Callable[[Any], dict[str, Any]],
    decode: Callable[[Any], Any],
) -> None:
    value = _sample(what)
    data = encode(value)
    assert data[SCHEMA_FIELD] == SCHEMA_VERSION == 2
    assert decode(through_json(data)) == value


@pytest.mark.parametrize(("what", "encode", "decode"), _CODECS, ids=lambda v: v)
def test_a_value_without_a_version_is_read_as_version_1(
    what: str,
    encode: Callable[[Any], dict[str, Any]],
    decode: Callable[[Any], Any],
) -> None:
    value = _sample(what)
    legacy = through_json(encode(value))
    del legacy[SCHEMA_FIELD]
    assert decode(legacy) == value


@pytest.mark.parametrize("version", [3, 99, 0, -1, "1", None, 1.5, True])
@pytest.mark.parametrize(("what", "encode", "decode"), _CODECS, ids=lambda v: v)
def test_an_unknown_version_is_refused_by_name(
    what: str,
    encode: Callable[[Any], dict[str, Any]],
    decode: Callable[[Any], Any],
    version: object,
) -> None:
    value = _sample(what)
    data = {**encode(value), SCHEMA_FIELD: version}
    with pytest.raises(UnsupportedSchemaError) as caught:
        decode(data)
    assert caught.value.what == what
    assert caught.value.version == version
    assert f"{what} has schema version {version!r}" in str(caught.value)


def test_mappings_cover_every_field_of_events_and_silences() -> None:
    _, event, silence, _ = _policy_values()
    assert EVENT_MAPPING["dynamic"] == SILENCE_MAPPING["dynamic"] == "strict"
    # The store adds the event's revision for sorting.
    assert set(event_to_dict(event)) | {"revision"} == set(EVENT_MAPPING["properties"])
    assert set(silence_to_dict(silence)) == set(SILENCE_MAPPING["properties"])
