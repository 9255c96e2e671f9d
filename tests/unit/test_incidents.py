"""Incidents and the outbox, pure: grouping, signal ids, notice timing, limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.tickets.codec import ticket_from_dict, ticket_to_dict
from monitor.analysis.tickets.model import (
    AlertRule,
    Evidence,
    Notice,
    NoticeKind,
    Priority,
    Ticket,
    Trigger,
    fingerprint,
)
from monitor.analysis.tickets.outbox import (
    NoticeClock,
    PendingSend,
    due_deliveries,
    plan_channel,
    queue_notice,
    record_outcome,
    repeat_due,
)
from monitor.analysis.tickets.policy import (
    DUPLICATE,
    FOLDED,
    OPENED,
    TicketPolicy,
    TicketSettings,
)

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, 13, 0, tzinfo=CST)
RULES = {
    ("空调异味", r.name): r
    for r in (
        AlertRule("负面声量", "空调异味", "negative_volume", 6, channels=("hook",)),
        AlertRule(
            "负面占比", "空调异味", "negative_share", 0.8, channels=("hook", "ding")
        ),
        AlertRule(
            "紧急",
            "空调异味",
            "negative_volume",
            6,
            min_priority="P1",
            channels=("ding",),
        ),
    )
}
POLICY = TicketPolicy(rules=RULES)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def signal(
    rule: str = "负面声量",
    minutes: float = 0,
    *,
    topic: str = "空调异味",
    **changes: object,
) -> Trigger:
    kind = "negative_share" if rule == "负面占比" else "negative_volume"
    values: dict[str, object] = {
        "topic": topic,
        "rule": rule,
        "kind": kind,
        "keyword": None,
        "window_start": at(60 * minutes),
        "window_end": at(60 * minutes + 300),
        "observed_value": 0.9 if kind == "negative_share" else 8.0,
        "threshold": 0.8 if kind == "negative_share" else 6.0,
    }
    values.update(changes)
    return Trigger(**values)  # type: ignore[arg-type]


def opened(trigger: Trigger | None = None, now: float = 0) -> Ticket:
    decision = POLICY.decide(trigger or signal(), [], at(now))
    assert decision.outcome == OPENED and decision.ticket is not None
    return decision.ticket


# --- grouping -------------------------------------------------------------------


def test_signals_of_one_topic_fold_into_one_incident_listing_each() -> None:
    ticket = opened()
    decision = POLICY.decide(signal("负面占比"), [ticket], at(5))
    assert decision.outcome == FOLDED and decision.ticket is not None
    incident = decision.ticket
    assert [s.rule for s in incident.signals] == ["负面声量", "负面占比"]
    share = incident.signals[1]
    assert (share.last_value, share.threshold, share.first_fired) == (0.9, 0.8, at(5))
    assert incident.channels == ("hook", "ding")


def test_the_incident_takes_the_highest_priority_among_its_signals() -> None:
    ticket = opened()
    assert ticket.priority != Priority.P1
    decision = POLICY.decide(signal("紧急"), [ticket], at(5))
    assert decision.ticket is not None and decision.ticket.priority == Priority.P1
    assert decision.ticket.outbox[-1].priority == Priority.P1


def test_a_signal_beyond_group_window_in_event_time_opens_a_new_incident() -> None:
    ticket = opened()
    later = POLICY.decide(signal(minutes=5 + 60 + 1), [ticket], at(10))
    assert later.outcome == OPENED and later.ticket is not None
    assert later.ticket.sequence == 2
    within = POLICY.decide(signal(minutes=5 + 59), [ticket], at(10))
    assert within.outcome == FOLDED


def test_incidents_sharing_posts_are_linked() -> None:
    post = Evidence("p-1", "星河广场的空调有怪味")
    first = opened(signal(evidence=(post,)))
    other = POLICY.decide(signal(topic="星河广场", evidence=(post,)), [first], at(3))
    assert other.ticket is not None and other.ticket.linked == (first.ticket_id,)


def test_an_old_per_rule_ticket_still_takes_its_rule_after_an_upgrade() -> None:
    legacy = replace(
        opened(),
        fingerprint=fingerprint("空调异味", "负面声量", None),
        group_key=None,
        signals=(),
        seen_signals=(),
    )
    decision = POLICY.decide(signal(minutes=5), [legacy], at(5))
    assert decision.outcome == FOLDED and decision.ticket is not None
    assert decision.ticket.ticket_id == legacy.ticket_id


# --- signal ids -----------------------------------------------------------------


def test_a_repeated_signal_id_is_a_no_op() -> None:
    ticket = opened(signal(signal_id="负面声量@空调异味@1"))
    again = POLICY.decide(
        signal(signal_id="负面声量@空调异味@1", observed_value=50.0), [ticket], at(9)
    )
    assert again.outcome == DUPLICATE and again.event is None


def test_a_provisional_signal_is_confirmed_then_a_withdrawal_is_shown() -> None:
    sid = "负面占比@空调异味@1"
    first = opened()
    early = POLICY.decide(
        signal("负面占比", signal_id=sid, provisional=True), [first], at(1)
    )
    assert early.ticket is not None and early.ticket.signals[1].provisional
    confirmed = POLICY.decide(signal("负面占比", signal_id=sid), [early.ticket], at(2))
    assert confirmed.outcome == FOLDED and confirmed.ticket is not None
    assert not confirmed.ticket.signals[1].provisional and not confirmed.notify
    withdrawn = POLICY.decide(
        signal("负面占比", signal_id=sid, retracted=True), [confirmed.ticket], at(3)
    )
    assert withdrawn.ticket is not None and withdrawn.ticket.signals[1].retracted
    assert not withdrawn.notify, "one signal still stands: no notice"


def test_withdrawing_the_last_signal_is_told() -> None:
    sid = "负面占比@空调异味@1"
    ticket = opened(signal("负面占比", signal_id=sid, provisional=True))
    withdrawn = POLICY.decide(
        signal("负面占比", signal_id=sid, retracted=True), [ticket], at(2)
    )
    assert withdrawn.notify and withdrawn.ticket is not None


# --- notice timing --------------------------------------------------------------


def test_a_p1_opening_is_due_at_once_others_after_group_wait() -> None:
    urgent = opened(signal("紧急"))
    assert urgent.outbox[0].due_at == at(0)
    calm = opened()
    assert calm.outbox[0].due_at == at(1)  # group_wait 1 s


def test_signals_during_group_wait_fold_into_the_first_notice() -> None:
    ticket = opened()
    folded = POLICY.decide(signal("负面占比"), [ticket], at(0.5)).ticket
    assert folded is not None and len(folded.outbox) == 1
    assert folded.outbox[0].folded == 1
    assert folded.outbox[0].channels == ("hook", "ding")


def test_updates_wait_group_interval_after_the_last_notice() -> None:
    settings = TicketSettings()
    ticket = opened()
    sent, _ = record_outcome(
        ticket,
        ticket.outbox[0].notice_id,
        "hook",
        accepted=True,
        now=at(1),
        settings=settings,
    )
    assert sent.outbox == ()
    updated = queue_notice(
        sent, NoticeKind.UPDATED, now=at(30), channels=("hook",), settings=settings
    )
    assert updated.outbox[0].due_at == at(1 + 300)
    assert due_deliveries(updated, at(60)) == []


def test_an_open_incident_repeats_after_repeat_interval() -> None:
    settings = TicketSettings(
        repeat_interval_seconds=3600, notice_clock=NoticeClock.WALL
    )
    ticket = replace(opened(), outbox=(), last_notice_at=at(1))
    assert not repeat_due(ticket, at(3000), settings)
    assert repeat_due(ticket, at(3601), settings)


def test_on_the_event_clock_the_sweep_leaves_repeats_to_event_time() -> None:
    settings = TicketSettings(repeat_interval_seconds=3600)
    ticket = replace(opened(), outbox=(), last_notice_at=at(1))
    assert ticket.notice_event_time == at(0)
    assert not repeat_due(ticket, at(3601), settings)
    # A ticket from before the notice clock (never told in event time).
    older = replace(ticket, notice_event_time=None)
    assert repeat_due(older, at(3601), settings)


def test_a_failed_channel_is_retried_with_backoff_and_the_rest_cleared() -> None:
    settings = TicketSettings()
    ticket = opened(signal("负面占比"))
    notice = ticket.outbox[0]
    ticket, _ = record_outcome(
        ticket, notice.notice_id, "hook", accepted=True, now=at(1), settings=settings
    )
    ticket, first = record_outcome(
        ticket,
        notice.notice_id,
        "ding",
        accepted=False,
        now=at(1),
        settings=settings,
        error="HTTP 500",
    )
    assert not first and ticket.delivery == {"hook": "sent", "ding": "failed"}
    assert ticket.outbox[0].channels == ("ding",) and ticket.outbox[0].due_at == at(3)
    again, _ = record_outcome(
        ticket, notice.notice_id, "hook", accepted=True, now=at(2), settings=settings
    )
    assert again == ticket, "a repeated outcome changes nothing"


def test_the_recipients_a_failed_channel_reached_are_kept_for_the_next_round() -> None:
    settings = TicketSettings()
    ticket = opened(signal("负面占比"))
    notice = ticket.outbox[0]
    for reached in (("a1",), ("a1", "b2")):
        ticket, _ = record_outcome(
            ticket,
            notice.notice_id,
            "ding",
            accepted=False,
            now=at(1),
            settings=settings,
            error="throttled",
            reached=reached,
        )
    assert ticket.outbox[0].reached == ("a1", "b2"), "merged, each once"
    encoded = ticket_to_dict(ticket)
    assert ticket_from_dict(encoded).outbox[0].reached == ("a1", "b2")
    del encoded["outbox"][0]["reached"]  # a document from before the field
    assert ticket_from_dict(encoded).outbox[0].reached == ()


# --- rate limits ----------------------------------------------------------------


def pending(priority: str, number: int) -> PendingSend:
    notice = Notice(
        f"T-{number}#n1",
        NoticeKind.OPENED,
        Priority(priority),
        at(0),
        at(number),
        ("ding",),
    )
    return PendingSend(f"T-{number}", notice, "ding")


def test_25_notices_over_a_20_a_minute_robot_make_20_messages_p1_first() -> None:
    items = [pending("P1" if n in (20, 22, 24) else "P3", n) for n in range(25)]
    plan = plan_channel(items, free=20)
    assert plan.messages == 20 and not plan.waiting
    assert [i.notice.priority for i in plan.singles[:3]] == [Priority.P1] * 3
    assert len(plan.singles) + len(plan.digest) == 25


def test_lower_priorities_leave_the_p1_reserve() -> None:
    plan = plan_channel([pending("P3", n) for n in range(5)], free=2)
    assert plan.messages == 0 and len(plan.waiting) == 5
    urgent = plan_channel([pending("P1", 0)], free=2)
    assert len(urgent.singles) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["P1", "P2", "P3", "P4"]), max_size=40),
    st.integers(min_value=0, max_value=25),
)
def test_a_plan_never_exceeds_the_limit_and_drops_nothing(
    priorities: list[str], free: int
) -> None:
    items = [pending(p, n) for n, p in enumerate(priorities)]
    plan = plan_channel(items, free=free)
    assert plan.messages <= free
    sent = [*plan.singles, *plan.digest, *plan.waiting]
    assert sorted(i.ticket_id for i in sent) == sorted(i.ticket_id for i in items)
    if plan.waiting:
        assert all(i.notice.priority != Priority.P1 for i in plan.waiting) or free == 0
    ranks = [i.notice.priority for i in plan.singles]
    assert ranks == sorted(ranks, key=str), "most urgent first"
