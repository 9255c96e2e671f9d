"""The alert-ticket policy: priority, dedup, flapping, SLA, routing, lifecycle."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.tickets.evidence import merge_evidence
from monitor.analysis.tickets.lifecycle import ACTIONS, apply_action, record_delivery
from monitor.analysis.tickets.model import (
    ACKNOWLEDGED,
    CLOSED,
    IN_PROGRESS,
    OPEN,
    PRIORITIES,
    RESOLVED,
    RULE_KINDS,
    STATUSES,
    AlertRule,
    Evidence,
    InvalidPolicyError,
    InvalidTransitionError,
    Priority,
    RuleKind,
    Ticket,
    TicketAction,
    TicketStatus,
    Trigger,
    default_ticket_id,
    fingerprint,
    incident_fingerprint,
)
from monitor.analysis.tickets.policy import (
    DUPLICATE,
    FOLDED,
    HELD,
    OPENED,
    REOPENED,
    SUPPRESSED,
    Outcome,
    TicketPolicy,
    TicketSettings,
)
from monitor.analysis.tickets.priority import compute_priority
from monitor.analysis.tickets.routing import (
    STRATEGIES,
    Routing,
    Strategy,
    Team,
    choose_owner,
)
from monitor.analysis.tickets.silences import MaintenanceWindow, Silence
from monitor.analysis.tickets.sla import SlaPolicy, check_sla
from monitor.errors import MonitorError

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, 13, 0, tzinfo=CST)

FACILITIES = Team(
    "facilities", ("王工", "李工", "赵工"), "round_robin", ("张经理", "赵总")
)
CARE = Team("care", ("小陈", "小刘"), "least_loaded", ("周姐",))
OPS = Team("ops", ("值班",), "round_robin", ())
ROUTING = Routing(
    teams={team.name: team for team in (FACILITIES, CARE, OPS)},
    topic_teams={"空调异味": "facilities", "客服": "care"},
    default_team="ops",
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_trigger(**changes: object) -> Trigger:
    values: dict[str, object] = {
        "topic": "空调异味",
        "rule": "负面声量",
        "kind": "negative_volume",
        "keyword": None,
        "window_start": at(0),
        "window_end": at(5),
        "observed_value": 10.0,
        "threshold": 10.0,
    }
    values.update(changes)
    return Trigger(**values)  # type: ignore[arg-type]


def make_policy(**changes: object) -> TicketPolicy:
    values: dict[str, object] = {"routing": ROUTING}
    values.update(changes)
    return TicketPolicy(**values)  # type: ignore[arg-type]


def window(minutes: float, **changes: object) -> Trigger:
    """A trigger on the 5-minute window starting ``minutes`` after T0."""
    return make_trigger(window_start=at(minutes), window_end=at(minutes + 5), **changes)


def open_ticket(policy: TicketPolicy | None = None, **changes: object) -> Ticket:
    decision = (policy or make_policy()).decide(make_trigger(**changes), [], at(5))
    assert decision.outcome == OPENED and decision.ticket is not None
    return decision.ticket


def in_status(status: str) -> Ticket:
    """A ticket brought to ``status`` through valid actions."""
    ticket = open_ticket()
    path = {
        OPEN: [],
        ACKNOWLEDGED: ["acknowledge"],
        IN_PROGRESS: ["acknowledge", "start"],
        RESOLVED: ["acknowledge", "start", "resolve"],
        CLOSED: ["acknowledge", "start", "resolve", "close"],
    }[status]
    for step, action in enumerate(path):
        ticket, _ = apply_action(ticket, action, "王工", at(10 + step))
    assert ticket.status == status
    return ticket


# --- priority -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, "P4", id="at-threshold"),
        pytest.param({"observed_value": 14.9}, "P4", id="1.49x"),
        pytest.param({"observed_value": 15.0}, "P4", id="1.5x-one-point"),
        pytest.param({"observed_value": 20.0}, "P3", id="2x"),
        pytest.param({"observed_value": 40.0}, "P3", id="4x-three-points"),
        pytest.param(
            {"observed_value": 40.0, "author_followers": 10_000}, "P2", id="4x-10k"
        ),
        pytest.param({"author_followers": 9_999}, "P4", id="just-under-10k"),
        pytest.param({"author_followers": 100_000}, "P3", id="100k"),
        pytest.param(
            {"observed_value": 40.0, "author_followers": 1_000_000}, "P1", id="4x-1M"
        ),
        pytest.param({"customer_tier": "gold"}, "P4", id="gold-one-point"),
        pytest.param({"customer_tier": "VIP"}, "P3", id="vip-two-points"),
        pytest.param({"customer_tier": "silver"}, "P4", id="silver-nothing"),
        pytest.param({"repeat_complaints": 3}, "P4", id="three-repeats"),
        pytest.param(
            {"repeat_complaints": 5, "customer_tier": "vip"},
            "P2",
            id="five-repeats-vip",
        ),
        pytest.param({"burst_score": 4.9}, "P4", id="weak-burst"),
        pytest.param({"burst_score": 8.0}, "P3", id="strong-burst"),
        pytest.param(
            {
                "kind": "burst",
                "observed_value": 8.0,
                "threshold": 4.0,
                "burst_score": 8.0,
            },
            "P3",
            id="burst-rule-counts-score-once",
        ),
        pytest.param(
            {
                "kind": "repeat_complaints",
                "observed_value": 5.0,
                "threshold": 3.0,
                "repeat_complaints": 5,
            },
            "P4",
            id="repeat-rule-counts-repeats-once",
        ),
    ],
)
def test_priority_table(changes: dict[str, object], expected: str) -> None:
    priority, reason = compute_priority(make_trigger(**changes))
    assert priority == expected
    assert reason.startswith(f"{expected}: ")


def test_priority_reason_spells_out_every_signal() -> None:
    trigger = make_trigger(
        observed_value=42.0,
        threshold=15.0,
        author_followers=120_000,
        customer_tier="gold",
        expected_value=3.04,
    )
    assert compute_priority(trigger) == (
        "P2",
        "P2: negative volume 42 is 2.8× the threshold 15 (baseline 3) (+2); "
        "author with 120k followers (+2); gold customer (+1); score 5",
    )


@pytest.mark.parametrize(
    ("kind", "observed", "threshold", "keyword", "text"),
    [
        (
            "negative_share",
            0.9,
            0.6,
            None,
            "negative share 90% is 1.5× the threshold 60%",
        ),
        ("burst", 6.0, 4.0, None, "burst score 6.0 is 1.5× the threshold 4"),
        ("emerging_keyword", 12.0, 5.0, "霉味", "new keyword '霉味' in 12 posts"),
        ("repeat_complaints", 4.0, 3.0, None, "one author posted 4 negative posts"),
    ],
)
def test_priority_reason_names_the_rule_kind(
    kind: str, observed: float, threshold: float, keyword: str | None, text: str
) -> None:
    _, reason = compute_priority(
        make_trigger(
            kind=kind, observed_value=observed, threshold=threshold, keyword=keyword
        )
    )
    assert text in reason


def test_rule_min_priority_is_a_floor_not_a_ceiling() -> None:
    rule = AlertRule("负面声量", "空调异味", "negative_volume", 10.0, min_priority="P2")
    low, reason = compute_priority(make_trigger(), rule)
    assert low == "P2" and "minimum P2" in reason
    high, _ = compute_priority(
        make_trigger(observed_value=40.0, author_followers=2_000_000), rule
    )
    assert high == "P1"


# --- fingerprint --------------------------------------------------------------


def test_fingerprint_is_stable_and_prefixed() -> None:
    value = fingerprint("空调异味", "负面声量", None)
    assert value == fingerprint("空调异味", "负面声量", None)
    assert value.startswith("fp-") and len(value) == 43
    assert default_ticket_id(value, 3) == f"T-{value[3:13]}-3"


@given(
    st.tuples(
        st.text(max_size=4), st.text(max_size=4), st.none() | st.text(max_size=4)
    ),
    st.tuples(
        st.text(max_size=4), st.text(max_size=4), st.none() | st.text(max_size=4)
    ),
)
def test_fingerprint_differs_for_different_triples(
    first: tuple[str, str, str | None], second: tuple[str, str, str | None]
) -> None:
    assert (fingerprint(*first) == fingerprint(*second)) == (first == second)


# --- opening, folding, duplicates -----------------------------------------------


def test_first_trigger_opens_a_routed_ticket_with_deadlines() -> None:
    trigger = make_trigger(
        evidence=(Evidence("wb-1", "空调有霉味", followers=5),),
        keywords=("霉味", "空调"),
    )
    decision = make_policy().decide(trigger, [], at(5))
    ticket, event = decision.ticket, decision.event
    assert decision.outcome == OPENED and decision.notify
    assert ticket is not None and event is not None
    group = incident_fingerprint("topic=空调异味")
    assert ticket.ticket_id == default_ticket_id(group, 1)
    assert (ticket.status, ticket.priority, ticket.occurrences) == (OPEN, "P4", 1)
    assert (ticket.team, ticket.owner) == ("facilities", "王工")
    assert ticket.ack_due == at(5) + timedelta(hours=4)
    assert ticket.resolve_due == at(5) + timedelta(hours=72)
    assert ticket.evidence[0].post_id == "wb-1"
    assert ticket.keywords == ("霉味", "空调")
    assert (event.action, event.from_status, event.to_status) == ("open", None, OPEN)
    assert (event.actor, event.at, event.event_id) == (
        "system",
        at(5),
        f"{ticket.ticket_id}#1",
    )
    assert event.note == ticket.priority_reason


def test_repeat_of_the_incident_folds_into_the_open_ticket() -> None:
    policy = make_policy()
    first = open_ticket(
        policy,
        evidence=(Evidence("a", "x", followers=10), Evidence("b", "y")),
    )
    decision = policy.decide(
        window(
            5,
            observed_value=12.0,
            evidence=(Evidence("a", "x", followers=10), Evidence("c", "z", 900)),
        ),
        [first],
        at(10),
    )
    ticket = decision.ticket
    assert decision.outcome == FOLDED and not decision.notify
    assert ticket is not None and ticket.ticket_id == first.ticket_id
    assert ticket.occurrences == 2
    assert (ticket.first_seen, ticket.last_seen) == (at(0), at(10))
    assert [item.post_id for item in ticket.evidence] == ["c", "a", "b"]
    assert [obs.observed_value for obs in ticket.history] == [10.0, 12.0]
    assert ticket.peak_value == 12.0 and ticket.priority == first.priority
    assert decision.event is not None and decision.event.action == "fold"
    assert decision.event.event_id == f"{ticket.ticket_id}#2"


def test_the_same_window_twice_is_a_duplicate() -> None:
    policy = make_policy()
    first = open_ticket(policy)
    decision = policy.decide(make_trigger(observed_value=99.0), [first], at(6))
    assert decision.outcome == DUPLICATE
    assert decision.ticket == first and decision.event is None


def per_keyword_policy(**changes: object) -> TicketPolicy:
    """A policy whose 空调异味 emerging-keyword rule groups by keyword too."""
    rule = AlertRule(
        "负面声量", "空调异味", "emerging_keyword", 5.0, group_by="topic,keyword"
    )
    return make_policy(rules={(rule.topic, rule.name): rule}, **changes)


def test_a_different_keyword_is_a_different_incident_when_grouped_by_it() -> None:
    policy = per_keyword_policy()
    first = open_ticket(policy, kind="emerging_keyword", keyword="霉味")
    decision = policy.decide(
        window(5, kind="emerging_keyword", keyword="头晕"), [first], at(10)
    )
    assert decision.outcome == OPENED
    assert decision.ticket is not None
    assert decision.ticket.fingerprint != first.fingerprint


def test_evidence_is_bounded_to_the_most_representative_posts() -> None:
    posts = [Evidence(f"p{n}", "t", followers=n, reposts=0) for n in range(30)]
    kept = merge_evidence(posts[:20], posts[10:], limit=5)
    assert [item.post_id for item in kept] == ["p29", "p28", "p27", "p26", "p25"]


def test_history_is_bounded() -> None:
    policy = make_policy(settings=TicketSettings(history_limit=3))
    ticket = open_ticket(policy)
    for step in range(1, 6):
        decision = policy.decide(window(5 * step), [ticket], at(5 * step + 5))
        assert decision.ticket is not None
        ticket = decision.ticket
    assert ticket.occurrences == 6
    assert [obs.window_start for obs in ticket.history] == [at(15), at(20), at(25)]


# --- escalation on growth ---------------------------------------------------------


def test_priority_rises_when_the_value_keeps_growing() -> None:
    policy = make_policy()
    ticket = open_ticket(policy)  # 10 against 10: P4
    steps = [
        (14.0, "P4", False),
        (15.0, "P3", True),
        (20.0, "P3", False),
        (23.0, "P2", True),
    ]
    for number, (value, expected, raised) in enumerate(steps, start=1):
        decision = policy.decide(
            window(5 * number, observed_value=value), [ticket], at(5 * number + 5)
        )
        assert decision.ticket is not None and decision.event is not None
        ticket = decision.ticket
        assert ticket.priority == expected, value
        assert decision.notify is raised
        if raised:
            assert "grew" in ticket.priority_reason
            assert decision.event.details["to_priority"] == expected


def test_priority_rises_every_n_occurrences() -> None:
    policy = make_policy(settings=TicketSettings(escalate_every=3))
    ticket = open_ticket(policy)
    priorities = []
    for step in range(1, 6):
        decision = policy.decide(window(5 * step), [ticket], at(5 * step + 5))
        assert decision.ticket is not None
        ticket = decision.ticket
        priorities.append(ticket.priority)
    # Occurrences 2..6: the 3rd and the 6th raise one level each.
    assert priorities == ["P4", "P3", "P3", "P3", "P2"]
    assert "6 occurrences" in ticket.priority_reason


def test_folding_never_lowers_the_priority_and_raising_tightens_deadlines() -> None:
    policy = make_policy()
    high = open_ticket(policy, observed_value=40.0, author_followers=2_000_000)
    assert high.priority == "P1"
    calm = policy.decide(window(5), [high], at(10)).ticket
    assert calm is not None and calm.priority == "P1"
    low = open_ticket(policy)
    raised = policy.decide(
        window(5, observed_value=40.0, author_followers=2_000_000), [low], at(10)
    ).ticket
    assert raised is not None and raised.priority == "P1"
    assert raised.ack_due == at(10) + timedelta(minutes=5)
    assert raised.resolve_due == at(10) + timedelta(hours=1)


# --- cool-down, reopen, closed, flapping ------------------------------------------


def _resolved(policy: TicketPolicy, when: datetime) -> Ticket:
    ticket = open_ticket(policy)
    ticket, _ = apply_action(ticket, "resolve", "王工", when, "filter replaced")
    return ticket


def test_refire_within_cooldown_reopens_the_same_ticket() -> None:
    policy = make_policy()
    resolved = _resolved(policy, at(20))
    decision = policy.decide(window(40), [resolved], at(50))
    ticket, event = decision.ticket, decision.event
    assert decision.outcome == REOPENED and decision.notify
    assert ticket is not None and event is not None
    assert ticket.ticket_id == resolved.ticket_id
    assert (ticket.status, ticket.reopen_count, ticket.occurrences) == (OPEN, 1, 2)
    assert ticket.resolved_at is None and ticket.acknowledged_at is None
    assert ticket.opened_at == at(50)
    assert ticket.ack_due == at(50) + timedelta(hours=4)
    assert (event.action, event.from_status, event.to_status) == (
        "reopen",
        RESOLVED,
        OPEN,
    )


def test_refire_after_cooldown_opens_a_new_ticket() -> None:
    policy = make_policy()
    resolved = _resolved(policy, at(20))
    decision = policy.decide(window(45), [resolved], at(50) + timedelta(seconds=1))
    assert decision.outcome == OPENED and decision.ticket is not None
    assert decision.ticket.sequence == 2
    assert decision.ticket.ticket_id.endswith("-2")
    assert decision.event is not None and resolved.ticket_id in decision.event.note


def test_closed_tickets_are_never_reopened_by_triggers() -> None:
    policy = make_policy()
    resolved = _resolved(policy, at(20))
    closed, _ = apply_action(resolved, "close", "王工", at(21))
    decision = policy.decide(window(25), [closed], at(30))
    assert decision.outcome == OPENED and decision.ticket is not None
    assert decision.ticket.ticket_id != closed.ticket_id


def test_flapping_incident_is_held_on_one_ticket() -> None:
    policy = make_policy(
        settings=TicketSettings(flap_max_opens=2, flap_window=timedelta(hours=2))
    )
    ticket = _resolved(policy, at(10))  # opened at 5: opens = 1
    decision = policy.decide(window(15), [ticket], at(20))
    assert decision.outcome == REOPENED and decision.ticket is not None
    ticket, _ = apply_action(decision.ticket, "resolve", "王工", at(25))  # opens = 2
    held = policy.decide(window(30), [ticket], at(35))
    assert held.outcome == HELD and not held.notify
    assert held.ticket is not None and held.event is not None
    assert held.ticket.status == RESOLVED and held.ticket.flapping
    assert held.ticket.occurrences == ticket.occurrences + 1
    assert held.event.action == "hold" and "flapping" in held.reason
    # Once the opens fall out of the flap window, triggers reopen or open again.
    later = policy.decide(window(130), [held.ticket], at(140))
    assert later.outcome == OPENED


# --- silences and maintenance --------------------------------------------------------


def _silence(**changes: object) -> Silence:
    values: dict[str, object] = {
        "silence_id": "S-1",
        "starts_at": at(0),
        "expires_at": at(60),
        "author": "小李",
        "reason": "known issue",
        "topic": "空调异味",
    }
    values.update(changes)
    return Silence(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("silence", "trigger", "now", "silenced"),
    [
        pytest.param(_silence(), make_trigger(), at(5), True, id="topic"),
        pytest.param(
            _silence(), make_trigger(topic="客服"), at(5), False, id="other-topic"
        ),
        pytest.param(
            _silence(topic=None, keyword="霉味"),
            make_trigger(keyword="霉味"),
            at(5),
            True,
            id="keyword",
        ),
        pytest.param(
            _silence(keyword="霉味"),
            make_trigger(keyword="头晕"),
            at(5),
            False,
            id="topic-and-other-keyword",
        ),
        pytest.param(
            _silence(topic=None, rule="负面声量"),
            make_trigger(),
            at(5),
            True,
            id="rule",
        ),
        pytest.param(
            _silence(topic=None, rule="负面占比"),
            make_trigger(),
            at(5),
            False,
            id="other-rule",
        ),
        pytest.param(
            _silence(clock="wall"),
            make_trigger(),
            at(0) - timedelta(seconds=1),
            False,
            id="wall-not-started",
        ),
        pytest.param(
            _silence(clock="wall"), make_trigger(), at(0), True, id="wall-at-start"
        ),
        pytest.param(
            _silence(clock="wall"), make_trigger(), at(60), False, id="wall-expired"
        ),
        pytest.param(
            _silence(),
            window(-1),
            at(5),
            False,
            id="event-before-start",
        ),
        pytest.param(_silence(), window(0), at(500), True, id="event-backlog"),
        pytest.param(_silence(), window(60), at(5), False, id="event-after-expiry"),
        pytest.param(
            _silence(),
            window(-10, crossing_published_at=at(1)),
            at(5),
            True,
            id="event-crossing-post",
        ),
    ],
)
def test_silence_matching(
    silence: Silence, trigger: Trigger, now: datetime, silenced: bool
) -> None:
    decision = make_policy(silences=(silence,)).decide(trigger, [], now)
    assert (decision.outcome == SUPPRESSED) is silenced
    if silenced:
        assert decision.ticket is None and decision.event is None
        assert decision.reason.startswith("suppressed by silence S-1")
        assert "小李" in decision.reason


def test_silence_also_stops_folding_into_the_open_ticket() -> None:
    ticket = open_ticket()
    policy = make_policy(silences=(_silence(starts_at=at(5)),))
    assert policy.decide(window(5), [ticket], at(10)).outcome == SUPPRESSED


@pytest.mark.parametrize(
    "changes",
    [
        {"topic": None},
        {"expires_at": at(0)},
        {"starts_at": datetime(2026, 11, 20, 13, 0)},  # noqa: DTZ001 - naive on purpose
    ],
)
def test_invalid_silences_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidPolicyError):
        _silence(**changes)


NIGHTLY = MaintenanceWindow(
    "nightly", daily_from=time(2, 0), daily_until=time(4, 0), tz=CST
)
AROUND_MIDNIGHT = MaintenanceWindow(
    "midnight",
    topics=("空调异味",),
    daily_from=time(23, 0),
    daily_until=time(1, 0),
    tz=CST,
)
UTC = timezone.utc


@pytest.mark.parametrize(
    ("window_", "moment", "topic", "active"),
    [
        (NIGHTLY, datetime(2026, 11, 21, 2, 0, tzinfo=CST), "停车", True),
        (NIGHTLY, datetime(2026, 11, 21, 3, 59, tzinfo=CST), "停车", True),
        (NIGHTLY, datetime(2026, 11, 21, 4, 0, tzinfo=CST), "停车", False),
        (NIGHTLY, datetime(2026, 11, 21, 1, 59, tzinfo=CST), "停车", False),
        # 18:30 UTC is 02:30 the next day at +08:00.
        (NIGHTLY, datetime(2026, 11, 20, 18, 30, tzinfo=UTC), "停车", True),
        (NIGHTLY, datetime(2026, 11, 21, 2, 30, tzinfo=UTC), "停车", False),
        (AROUND_MIDNIGHT, datetime(2026, 11, 20, 23, 30, tzinfo=CST), "空调异味", True),
        (AROUND_MIDNIGHT, datetime(2026, 11, 21, 0, 30, tzinfo=CST), "空调异味", True),
        (AROUND_MIDNIGHT, datetime(2026, 11, 21, 1, 0, tzinfo=CST), "空调异味", False),
        (
            AROUND_MIDNIGHT,
            datetime(2026, 11, 20, 22, 59, tzinfo=CST),
            "空调异味",
            False,
        ),
        (AROUND_MIDNIGHT, datetime(2026, 11, 20, 16, 30, tzinfo=UTC), "空调异味", True),
        (AROUND_MIDNIGHT, datetime(2026, 11, 20, 23, 30, tzinfo=CST), "客服", False),
    ],
)
def test_daily_maintenance_windows(
    window_: MaintenanceWindow, moment: datetime, topic: str, active: bool
) -> None:
    assert window_.is_active(topic, moment) is active


def test_one_off_and_bounded_daily_maintenance() -> None:
    one_off = MaintenanceWindow("upgrade", ("空调异味",), at(0), at(60))
    assert one_off.is_active("空调异味", at(0))
    assert not one_off.is_active("空调异味", at(60))
    bounded = replace(NIGHTLY, starts_at=datetime(2026, 11, 22, tzinfo=CST))
    assert not bounded.is_active("x", datetime(2026, 11, 21, 2, 30, tzinfo=CST))
    assert bounded.is_active("x", datetime(2026, 11, 22, 2, 30, tzinfo=CST))


def test_maintenance_suppresses_triggers_on_its_topics() -> None:
    policy = make_policy(
        maintenance=(MaintenanceWindow("upgrade", ("空调异味",), at(0), at(60)),)
    )
    decision = policy.decide(make_trigger(), [], at(5))
    assert decision.outcome == SUPPRESSED
    assert decision.reason == "suppressed by maintenance window upgrade"
    assert policy.decide(make_trigger(topic="客服"), [], at(5)).outcome == OPENED


def test_maintenance_is_judged_at_the_time_of_the_posts_not_of_the_decision() -> (
    None
):
    policy = make_policy(maintenance=(NIGHTLY,))
    night = datetime(2026, 11, 20, 2, 30, tzinfo=CST)
    day = datetime(2026, 11, 20, 13, 5, tzinfo=CST)
    at_night = make_trigger(window_start=night, window_end=night + timedelta(minutes=5))
    by_day = make_trigger(window_start=day, window_end=day + timedelta(minutes=5))
    # A daytime incident handled while the crawlers restart is still raised;
    # posts of the restart hours replayed in the day are still muted.
    assert policy.decide(by_day, [], night + timedelta(days=1)).outcome == OPENED
    assert policy.decide(at_night, [], day).outcome == SUPPRESSED


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"daily_from": time(2, 0)},
        {"starts_at": at(10), "ends_at": at(0)},
        {"starts_at": datetime(2026, 11, 20), "ends_at": at(10)},  # noqa: DTZ001
    ],
)
def test_invalid_maintenance_windows_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidPolicyError):
        MaintenanceWindow("bad", **changes)  # type: ignore[arg-type]


# --- SLA --------------------------------------------------------------------------


def test_check_sla_reports_missed_deadlines_by_status() -> None:
    ticket = open_ticket()  # P4 opened at 5: ack 4 h, resolve 72 h
    assert check_sla(ticket, ticket.ack_due) == []
    late = ticket.ack_due + timedelta(seconds=1)
    assert [breach.kind for breach in check_sla(ticket, late)] == ["ack"]
    acknowledged, _ = apply_action(ticket, "acknowledge", "王工", at(6))
    assert check_sla(acknowledged, late) == []
    very_late = ticket.resolve_due + timedelta(seconds=1)
    assert [b.kind for b in check_sla(ticket, very_late)] == ["ack", "resolve"]
    resolved, _ = apply_action(acknowledged, "resolve", "王工", at(7))
    assert check_sla(resolved, very_late) == []


def test_sla_breach_escalates_once_per_deadline() -> None:
    policy = make_policy()
    ticket = open_ticket(policy, observed_value=20.0)  # P3: ack within 1 h
    assert ticket.priority == "P3"
    breach_time = ticket.ack_due + timedelta(seconds=1)
    escalated, events = policy.enforce_sla(ticket, breach_time)
    assert [event.action for event in events] == ["sla_breach"]
    assert (escalated.priority, escalated.escalation_level) == ("P2", 1)
    assert escalated.escalation_contact == "张经理"
    assert escalated.status == OPEN
    assert escalated.ack_due == breach_time + timedelta(minutes=15)
    event = events[0]
    assert (event.actor, event.at, event.from_status, event.to_status) == (
        "system",
        breach_time,
        OPEN,
        OPEN,
    )
    assert event.details["deadline"] == "ack"
    assert event.details["escalation_contact"] == "张经理"
    # Handled once: the same or a later check before the new deadline is quiet.
    assert policy.enforce_sla(escalated, breach_time) == (escalated, [])
    assert policy.enforce_sla(escalated, breach_time + timedelta(minutes=10))[1] == []
    # The next deadline missed escalates to the next contact, and so on.
    again, events = policy.enforce_sla(
        escalated, escalated.ack_due + timedelta(seconds=1)
    )
    assert (again.priority, again.escalation_level, again.escalation_contact) == (
        "P1",
        2,
        "赵总",
    )
    last, events = policy.enforce_sla(again, again.ack_due + timedelta(seconds=1))
    assert (last.priority, last.escalation_level, last.escalation_contact) == (
        "P1",
        3,
        "赵总",
    )
    assert len(events) == 1


def test_both_deadlines_missed_escalate_twice() -> None:
    policy = make_policy()
    ticket = open_ticket(policy)
    late = ticket.resolve_due + timedelta(seconds=1)
    escalated, events = policy.enforce_sla(ticket, late)
    assert [event.details["deadline"] for event in events] == ["ack", "resolve"]
    assert (escalated.priority, escalated.escalation_level) == ("P2", 2)
    assert [event.event_id for event in events] == [
        f"{ticket.ticket_id}#2",
        f"{ticket.ticket_id}#3",
    ]


def test_sla_overrides_and_validation() -> None:
    sla = SlaPolicy(
        ack={**SlaPolicy().ack, "P4": timedelta(minutes=30)},
        resolve=SlaPolicy().resolve,
    )
    ticket = open_ticket(make_policy(sla=sla))
    assert ticket.ack_due == at(5) + timedelta(minutes=30)
    with pytest.raises(InvalidPolicyError):
        SlaPolicy(ack={"P1": timedelta(minutes=5)})
    with pytest.raises(InvalidPolicyError):
        SlaPolicy(ack={p: timedelta(0) for p in PRIORITIES})


# --- routing ------------------------------------------------------------------------


def test_round_robin_cycles_through_the_team() -> None:
    policy = per_keyword_policy()
    tickets: list[Ticket] = []
    for number in range(4):
        decision = policy.decide(
            make_trigger(kind="emerging_keyword", keyword=f"k{number}"),
            tickets,
            at(5 + number),
        )
        assert decision.ticket is not None
        tickets.append(decision.ticket)
    assert [t.owner for t in tickets] == ["王工", "李工", "赵工", "王工"]


def test_least_loaded_counts_only_active_tickets() -> None:
    base = open_ticket(topic="客服")

    def owned(owner: str, status: str, number: int) -> Ticket:
        return replace(base, owner=owner, status=status, ticket_id=f"x{number}")

    tickets = [
        owned("小陈", OPEN, 1),
        owned("小陈", ACKNOWLEDGED, 2),
        owned("小刘", IN_PROGRESS, 3),
        owned("小刘", RESOLVED, 4),
        owned("小刘", CLOSED, 5),
    ]
    assert choose_owner(CARE, tickets) == "小刘"
    tickets.append(owned("小刘", OPEN, 6))
    assert choose_owner(CARE, tickets) == "小陈"  # tie: the first member
    assert choose_owner(CARE, []) == "小陈"


def test_topics_without_a_team_go_to_the_default_team() -> None:
    ticket = open_ticket(topic="停车")
    assert (ticket.team, ticket.owner) == ("ops", "值班")


def test_rule_team_overrides_topic_routing_and_empty_team_leaves_unassigned() -> None:
    rule = AlertRule(
        "重复投诉",
        "空调异味",
        "repeat_complaints",
        3,
        team="care",
        channels=("feishu",),
    )
    policy = make_policy(rules={("空调异味", "重复投诉"): rule})
    ticket = open_ticket(
        policy,
        rule="重复投诉",
        kind="repeat_complaints",
        threshold=3.0,
        observed_value=3.0,
    )
    assert (ticket.team, ticket.owner, ticket.channels) == ("care", "小陈", ("feishu",))
    ghost = make_policy(routing=Routing(teams={}, default_team="nobody"))
    orphan = open_ticket(ghost)
    assert (orphan.team, orphan.owner) == ("nobody", None)


def test_injected_id_factory_names_tickets() -> None:
    policy = make_policy(id_factory=lambda fp, n: f"INC-{n:04d}")
    assert open_ticket(policy).ticket_id == "INC-0001"


# --- lifecycle ----------------------------------------------------------------------

# (status, action) -> status after, for every allowed pair; all others refused.
VALID = {
    (OPEN, "acknowledge"): ACKNOWLEDGED,
    (OPEN, "start"): IN_PROGRESS,
    (ACKNOWLEDGED, "start"): IN_PROGRESS,
    (OPEN, "resolve"): RESOLVED,
    (ACKNOWLEDGED, "resolve"): RESOLVED,
    (IN_PROGRESS, "resolve"): RESOLVED,
    (RESOLVED, "close"): CLOSED,
    (RESOLVED, "reopen"): OPEN,
    (CLOSED, "reopen"): OPEN,
    **{(status, "assign"): status for status in STATUSES if status != CLOSED},
    **{(status, "transfer"): status for status in STATUSES if status != CLOSED},
    **{(status, "escalate"): status for status in (OPEN, ACKNOWLEDGED, IN_PROGRESS)},
    **{(status, "comment"): status for status in STATUSES},
}
PARAMS = {
    "assign": {"owner": "李工"},
    "transfer": {"team": "care", "owner": "小刘"},
    "close": {"root_cause": "滤网", "resolution": "更换", "lessons": "巡检"},
}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_lifecycle_transition_table(status: str, action: str) -> None:
    ticket = in_status(status)
    now = at(30)
    params = PARAMS.get(action, {})
    if (status, action) in VALID:
        new, event = apply_action(ticket, action, "周姐", now, "because", **params)
        assert new.status == VALID[(status, action)]
        assert (event.actor, event.at, event.note, event.action) == (
            "周姐",
            now,
            "because",
            action,
        )
        assert (event.from_status, event.to_status) == (status, new.status)
        assert event.event_id == f"{ticket.ticket_id}#{ticket.revision + 1}"
        assert new.revision == ticket.revision + 1
    else:
        with pytest.raises(InvalidTransitionError) as caught:
            apply_action(ticket, action, "周姐", now, "because", **params)
        error = caught.value
        assert isinstance(error, MonitorError)
        assert (error.ticket_id, error.action, error.status) == (
            ticket.ticket_id,
            action,
            status,
        )
        assert f"cannot {action} ticket {ticket.ticket_id}" in str(error)


def test_lifecycle_timestamps() -> None:
    ticket = open_ticket()
    ticket, _ = apply_action(ticket, "start", "王工", at(10))
    assert ticket.acknowledged_at == at(10) and ticket.started_at == at(10)
    ticket, _ = apply_action(ticket, "resolve", "王工", at(20), "filter replaced")
    assert ticket.resolved_at == at(20)
    ticket, _ = apply_action(ticket, "close", "张经理", at(30))
    assert ticket.closed_at == at(30)
    ticket, event = apply_action(ticket, "reopen", "张经理", at(40), "smell is back")
    assert (ticket.status, ticket.reopen_count) == (OPEN, 1)
    assert ticket.closed_at is None and ticket.resolved_at is None
    assert ticket.ack_due == at(40) + timedelta(hours=4)
    assert event.details["reopen_count"] == 1


@pytest.mark.parametrize(
    ("status", "action", "note", "params", "message"),
    [
        (RESOLVED, "reopen", "", {}, "must say why"),
        (OPEN, "comment", "  ", {}, "needs a note"),
        (OPEN, "assign", "", {}, "needs owner="),
        (OPEN, "transfer", "", {}, "owner= and/or team="),
        (OPEN, "assign", "", {"owner": "王工"}, "already with"),
        (OPEN, "acknowledge", "", {"owner": "x"}, "unexpected parameters"),
        (OPEN, "delete", "", {}, "unknown action"),
    ],
)
def test_actions_refuse_missing_or_wrong_input(
    status: str, action: str, note: str, params: dict[str, str], message: str
) -> None:
    ticket = in_status(status)
    with pytest.raises(InvalidTransitionError, match=message):
        apply_action(ticket, action, "王工", at(30), note, **params)


def test_transfer_and_escalate_record_details() -> None:
    policy = make_policy()
    ticket = open_ticket(policy)
    moved, event = apply_action(
        ticket, "transfer", "王工", at(6), "not ours", team="care", owner="小刘"
    )
    assert (moved.team, moved.owner) == ("care", "小刘")
    assert event.details == {
        "from_owner": "王工",
        "to_owner": "小刘",
        "from_team": "facilities",
        "to_team": "care",
    }
    up, event = policy.apply_action(moved, "escalate", "小刘", at(7), "VIP upset")
    assert (up.priority, up.escalation_level, up.escalation_contact) == (
        "P3",
        1,
        "周姐",
    )
    assert event.details["from_priority"] == "P4"


def test_actions_need_an_aware_time() -> None:
    with pytest.raises(InvalidPolicyError):
        naive = datetime(2026, 11, 20, 13, 0)  # noqa: DTZ001 - on purpose
        apply_action(open_ticket(), "acknowledge", "王工", naive)


def test_record_delivery_keeps_a_status_per_channel() -> None:
    ticket = open_ticket()
    ticket, event = record_delivery(ticket, "ops-webhook", "failed", at(6), "HTTP 502")
    ticket, _ = record_delivery(ticket, "dingtalk", "sent", at(6))
    ticket, _ = record_delivery(ticket, "ops-webhook", "sent", at(7))
    assert ticket.delivery == {"ops-webhook": "sent", "dingtalk": "sent"}
    assert (event.action, event.note, event.details["channel"]) == (
        "delivery",
        "HTTP 502",
        "ops-webhook",
    )


def test_triggers_and_rules_validate_their_values() -> None:
    with pytest.raises(InvalidPolicyError):
        make_trigger(window_start=datetime(2026, 11, 20))  # noqa: DTZ001
    with pytest.raises(InvalidPolicyError):
        make_trigger(window_end=at(-1))
    with pytest.raises(InvalidPolicyError):
        make_trigger(kind="sentiment")
    with pytest.raises(InvalidPolicyError):
        AlertRule("x", "t", "negative_volume", 0)
    with pytest.raises(InvalidPolicyError):
        TicketSettings(escalate_every=1)


# --- invariants under any sequence ---------------------------------------------------

_STEPS = st.lists(
    st.tuples(
        st.sampled_from([*ACTIONS, "trigger", "sla"]),
        st.integers(min_value=0, max_value=400),  # minutes until the step
        st.floats(min_value=1.0, max_value=200.0),  # observed value of a trigger
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(_STEPS)
def test_any_sequence_of_steps_keeps_the_invariants(
    steps: list[tuple[str, int, float]],
) -> None:
    policy = make_policy(
        settings=TicketSettings(
            cooldown=timedelta(minutes=60),
            flap_max_opens=3,
            group_window_seconds=30 * 86400.0,
        )
    )
    tickets = {}
    first = open_ticket(policy)
    tickets[first.ticket_id] = first
    now = at(5)
    minute = 5
    for action, gap, value in steps:
        now += timedelta(minutes=gap)
        minute += gap + 5
        current = max(tickets.values(), key=lambda t: t.sequence)
        if action == "trigger":
            decision = policy.decide(
                window(minute, observed_value=value), list(tickets.values()), now
            )
            changed = [decision.ticket] if decision.ticket else []
        elif action == "sla":
            changed = [policy.enforce_sla(current, now)[0]]
        else:
            try:
                changed = [
                    policy.apply_action(
                        current, action, "p", now, "n", **PARAMS.get(action, {})
                    )[0]
                ]
            except InvalidTransitionError as error:
                # A valid pair is refused only when it would change nothing.
                assert (current.status, action) not in VALID or (
                    "already with" in str(error)
                )
                continue
        for ticket in changed:
            before = tickets.get(ticket.ticket_id)
            if before is not None:
                assert ticket.occurrences >= before.occurrences
                assert ticket.reopen_count >= before.reopen_count
                assert ticket.revision >= before.revision
                assert ticket.escalation_level >= before.escalation_level
            tickets[ticket.ticket_id] = ticket
    assert sum(t.is_active for t in tickets.values()) <= 1
    for ticket in tickets.values():
        assert ticket.priority in PRIORITIES
        assert ticket.status in STATUSES
        assert ticket.occurrences >= 1
        assert (ticket.closed_at is not None) == (ticket.status == CLOSED)
        if ticket.status in (RESOLVED, CLOSED):
            assert ticket.resolved_at is not None
        assert ticket.ack_due <= ticket.resolve_due or ticket.escalation_level > 0


def test_check_sla_skips_deadlines_already_handled() -> None:
    ticket = open_ticket()
    late = ticket.ack_due + timedelta(seconds=1)
    (breach,) = check_sla(ticket, late)
    assert breach.key == f"ack@{ticket.ack_due.isoformat()}"
    handled = replace(ticket, sla_breaches=frozenset({breach.key}))
    assert check_sla(handled, late) == []


# --- vocabularies ------------------------------------------------------------------


def test_vocabularies_are_str_enums_equal_to_their_old_text() -> None:
    assert STATUSES == ("open", "acknowledged", "in_progress", "resolved", "closed")
    assert PRIORITIES == ("P1", "P2", "P3", "P4")
    assert RULE_KINDS == (
        "negative_volume",
        "negative_share",
        "burst",
        "emerging_keyword",
        "repeat_complaints",
        "hot_word",
    )
    assert ACTIONS == (
        "acknowledge",
        "start",
        "resolve",
        "close",
        "reopen",
        "assign",
        "transfer",
        "escalate",
        "comment",
    )
    assert [str(outcome) for outcome in Outcome] == [
        OPENED,
        FOLDED,
        REOPENED,
        HELD,
        SUPPRESSED,
        DUPLICATE,
    ]
    assert STRATEGIES == ("round_robin", "least_loaded")
    assert f"{TicketStatus.IN_PROGRESS} {Priority.P1}" == "in_progress P1"


def test_text_read_from_files_becomes_enum_members() -> None:
    rule = AlertRule("r", "t", "burst", 3.0, min_priority="P2")
    assert rule.kind is RuleKind.BURST and rule.min_priority is Priority.P2
    assert Team("care", ("a",), "least_loaded").strategy is Strategy.LEAST_LOADED
    trigger = make_trigger(kind="negative_share", observed_value=0.9, threshold=0.5)
    assert trigger.kind is RuleKind.NEGATIVE_SHARE


def test_events_carry_enum_members_and_refusals_name_plain_text() -> None:
    ticket = open_ticket()
    acked, event = apply_action(ticket, "acknowledge", "王工", at(30))
    assert event.action is TicketAction.ACKNOWLEDGE
    assert event.to_status is TicketStatus.ACKNOWLEDGED
    with pytest.raises(InvalidTransitionError) as caught:
        apply_action(acked, "close", "王工", at(31))
    assert "in status 'acknowledged'" in str(caught.value)
    with pytest.raises(InvalidPolicyError, match=r"one of \('P1', 'P2', 'P3', 'P4'\)"):
        AlertRule("r", "t", "burst", 3.0, min_priority="P9")
