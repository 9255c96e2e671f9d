"""The notice clock, pure: group_interval and repeat_interval on event time.

A replay (or a backlog after an outage) brings hours of signals within
seconds of wall time. With ``notice_clock: event`` the incident is notified
as it happened: an update about once per ``group_interval`` of event time at
most, and only when something changed; with ``wall`` as before. Every test
runs the policy and a stand-in sender on an injected wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.tickets.model import (
    AlertRule,
    NoticeKind,
    Priority,
    RuleKind,
    Ticket,
    TicketStatus,
    Trigger,
)
from monitor.analysis.tickets.outbox import (
    NoticeClock,
    due_deliveries,
    notice_due,
    record_outcome,
)
from monitor.analysis.tickets.policy import (
    OPENED,
    TicketDecision,
    TicketPolicy,
    TicketSettings,
)

ROOT = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))
#: Event time: the sample feed's air-conditioning incident starts at 13:00.
E0 = datetime(2026, 11, 20, 13, 0, tzinfo=CST)
#: Wall clock: the replay runs long after.
W0 = datetime(2027, 3, 1, 9, 0, tzinfo=timezone.utc)
TOPIC = "空调异味"
KINDS = {
    "负面声量": RuleKind.NEGATIVE_VOLUME,
    "负面占比": RuleKind.NEGATIVE_SHARE,
    "声量突增": RuleKind.BURST,
    "新关键词": RuleKind.EMERGING_KEYWORD,
    "重复投诉": RuleKind.REPEAT_COMPLAINTS,
    "紧急": RuleKind.NEGATIVE_VOLUME,
}
THRESHOLDS = {
    "负面声量": 6.0,
    "负面占比": 0.8,
    "声量突增": 4.0,
    "新关键词": 5.0,
    "重复投诉": 3.0,
    "紧急": 6.0,
}
#: One channel for every rule, so no channel ever joins late.
ONE_CHANNEL = {
    (TOPIC, name): AlertRule(
        name,
        TOPIC,
        KINDS[name],
        THRESHOLDS[name],
        channels=("hook",),
        min_priority=Priority.P1 if name == "紧急" else None,
    )
    for name in KINDS
}
EVENT = TicketSettings()
WALL = TicketSettings(notice_clock=NoticeClock.WALL)


def event_at(minutes: float) -> datetime:
    return E0 + timedelta(minutes=minutes)


def signal(rule: str, minutes: float, value: float | None = None) -> Trigger:
    """A 5-minute window of ``rule`` starting ``minutes`` after 13:00."""
    return Trigger(
        topic=TOPIC,
        rule=rule,
        kind=KINDS[rule],
        keyword="霉味" if rule == "新关键词" else None,
        window_start=event_at(minutes),
        window_end=event_at(minutes + 5),
        observed_value=THRESHOLDS[rule] * 1.1 if value is None else value,
        threshold=THRESHOLDS[rule],
    )


@dataclass
class Sent:
    """One notice as a channel received it."""

    notice_id: str
    kind: NoticeKind
    priority: Priority
    folded: int
    channel: str
    wall: datetime


@dataclass
class Replay:
    """The policy and a sender that delivers what is due, on an injected clock."""

    policy: TicketPolicy
    tickets: dict[str, Ticket] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    decisions: list[tuple[Trigger, Ticket | None, TicketDecision, datetime]] = field(
        default_factory=list
    )

    def deliver(self, now: datetime) -> None:
        for ticket_id, ticket in list(self.tickets.items()):
            for notice, channel in due_deliveries(ticket, now):
                self.sent.append(
                    Sent(
                        notice.notice_id,
                        notice.kind,
                        notice.priority,
                        notice.folded,
                        channel,
                        now,
                    )
                )
                ticket, _ = record_outcome(
                    ticket,
                    notice.notice_id,
                    channel,
                    accepted=True,
                    now=now,
                    settings=self.policy.settings,
                )
            self.tickets[ticket_id] = ticket

    def feed(self, triggers: Sequence[Trigger], wall_seconds: float = 10.0) -> None:
        """Decide every trigger within ``wall_seconds`` of wall time, sending as due."""
        step = wall_seconds / max(1, len(triggers))
        for number, trigger in enumerate(triggers):
            now = W0 + timedelta(seconds=number * step)
            self.deliver(now)
            before = next(
                (
                    t
                    for t in self.tickets.values()
                    if t.is_active and t.topic == trigger.topic
                ),
                None,
            )
            decision = self.policy.decide(trigger, list(self.tickets.values()), now)
            if decision.ticket is not None:
                self.tickets[decision.ticket.ticket_id] = decision.ticket
            self.decisions.append((trigger, before, decision, now))

    def drain(self, after: datetime, seconds: float = 3600.0) -> None:
        """Let wall time run on (second by second) so every pending notice goes."""
        for second in range(int(seconds)):
            self.deliver(after + timedelta(seconds=second))

    def notices(self, channel: str | None = None) -> list[Sent]:
        """The distinct notices sent (first channel's copy), in order."""
        seen: dict[str, Sent] = {}
        for item in self.sent:
            if channel is None or item.channel == channel:
                seen.setdefault(item.notice_id, item)
        return list(seen.values())


def air_conditioning_incident(
    rules: Iterable[str] = ("负面声量", "负面占比", "声量突增", "新关键词", "重复投诉"),
) -> list[Trigger]:
    """13:00-14:30 at 5-minute steps: values rise, peak at 13:45, then fall.

    负面声量 fires throughout, 声量突增 at the onset only, 负面占比 from 13:10,
    重复投诉 at 13:35, 13:45 and 14:00, and a new keyword from 13:40 to 13:55
    (the sample feed's shape, by hand).
    """
    negatives = [7, 14, 31, 57, 83, 78, 60, 94, 95, 95, 78, 42, 37, 22, 12, 9, 7, 7, 7]
    wanted = set(rules)
    triggers = []
    for step, count in enumerate(negatives):
        minutes = 5 * step
        fired = {"负面声量": float(count)}
        if step in (0, 1):
            fired["声量突增"] = 4.5 + step
        if 2 <= step <= 15:
            fired["负面占比"] = 0.85 + 0.01 * min(step, 9 - min(step, 9))
        if minutes in (35, 45, 60):
            fired["重复投诉"] = 3.0 + (minutes == 45)
        if 40 <= minutes <= 55:
            fired["新关键词"] = 6.0 + minutes / 5
        for rule, value in fired.items():
            if rule in wanted:
                triggers.append(signal(rule, minutes, value))
    return triggers


def changes(replay: Replay) -> int:
    """Decisions that changed a ticket (each must reach some notice's count)."""
    return sum(1 for _, _, d, _ in replay.decisions if d.event is not None)


def told(replay: Replay) -> int:
    """Changes told so far or still to tell: notices, their folds, held ones."""
    in_flight = sum(1 + n.folded for t in replay.tickets.values() for n in t.outbox)
    held = sum(t.held_updates for t in replay.tickets.values())
    return sum(1 + n.folded for n in replay.notices()) + in_flight + held


def is_news(before: Ticket | None, decision: TicketDecision) -> bool:
    """A new incident, a signal joining, or a priority change."""
    after = decision.ticket
    if after is None or decision.event is None:
        return False
    if before is None or decision.outcome == OPENED:
        return True
    return after.priority != before.priority or len(after.signals) > len(before.signals)


def assert_updates_wait_group_interval_of_event_time(replay: Replay) -> None:
    """An update made due at once is group_interval of event time after the last."""
    interval = timedelta(seconds=replay.policy.settings.group_interval_seconds)
    for trigger, before, decision, now in replay.decisions:
        after = decision.ticket
        if after is None or before is None:
            continue
        # The sender delivered everything due before this decision.
        if any(n.kind == NoticeKind.UPDATED and n.due_at <= now for n in after.outbox):
            assert before.notice_event_time is not None
            assert trigger.event_time >= before.notice_event_time + interval


# --- the replay -------------------------------------------------------------------


def test_a_replay_is_notified_once_per_group_interval_of_event_time_at_most() -> None:
    replay = Replay(TicketPolicy(rules=ONE_CHANNEL, settings=EVENT))
    triggers = air_conditioning_incident()
    replay.feed(triggers, wall_seconds=10)
    assert len(replay.tickets) == 1, "one incident"
    during = replay.notices()
    interval = timedelta(seconds=EVENT.group_interval_seconds)
    # Every notice queued during the replay came from news, never a repeat...
    for trigger, before, decision, _ in replay.decisions:
        after = decision.ticket
        assert after is not None
        if before is not None and after.notices > before.notices:
            assert is_news(before, decision), (trigger.rule, trigger.window_start)
    # ... and an update is sent only group_interval of event time after the
    # previous notice, though all of it arrives within 10 s of wall time.
    assert_updates_wait_group_interval_of_event_time(replay)
    span = triggers[-1].event_time - triggers[0].event_time
    assert len(during) <= span / interval + 1
    # The incident's news: opened, raised (to P1), four signals joining
    # after the opening: at most one notice for each.
    assert 3 <= len(during) <= 6, [(n.kind, n.priority) for n in during]
    # Nothing is lost: every change is a notice, folded into one, or held.
    replay.drain(W0 + timedelta(seconds=10))
    assert told(replay) == changes(replay)


def test_on_the_wall_clock_a_replay_folds_into_one_update_as_before() -> None:
    replay = Replay(TicketPolicy(rules=ONE_CHANNEL, settings=WALL))
    replay.feed(air_conditioning_incident(), wall_seconds=10)
    during = replay.notices()
    assert all(n.kind != NoticeKind.UPDATED for n in during)
    replay.drain(W0 + timedelta(seconds=10), seconds=900)
    updates = [n for n in replay.notices() if n.kind == NoticeKind.UPDATED]
    assert len(updates) == 1, "everything after the first notices folds into one"
    # group_interval of wall time after the last notice (the drain ticks by 1 s).
    waited = updates[0].wall - max(n.wall for n in during)
    interval = WALL.group_interval_seconds
    assert interval <= waited.total_seconds() < interval + 1
    assert told(replay) == changes(replay)


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1),  # noqa: DTZ001 (hypothesis wants naive)
        max_value=datetime(2030, 1, 1),  # noqa: DTZ001
        timezones=st.just(timezone.utc),
    ),
    st.sampled_from(list(NoticeKind)),
    st.floats(min_value=0, max_value=3600),
)
def test_the_wall_clock_never_reads_event_time(
    event_time: datetime, kind: NoticeKind, since_last: float
) -> None:
    replay = Replay(TicketPolicy(rules=ONE_CHANNEL, settings=WALL))
    replay.feed([signal("负面声量", 0)])
    ticket = next(iter(replay.tickets.values()))
    ticket = replace(
        ticket,
        outbox=(),
        last_notice_at=W0 - timedelta(seconds=since_last),
        notice_event_time=E0,
    )
    assert notice_due(ticket, kind, W0, WALL, event_time) == notice_due(
        ticket, kind, W0, WALL
    )


# --- first notices and urgent ones --------------------------------------------------


def test_a_p1_first_notice_is_immediate_others_wait_group_wait_on_the_wall() -> None:
    policy = TicketPolicy(rules=ONE_CHANNEL, settings=EVENT)
    urgent = policy.decide(signal("紧急", 0), [], W0).ticket
    assert urgent is not None and urgent.priority == Priority.P1
    assert urgent.outbox[0].due_at == W0
    calm = policy.decide(signal("负面占比", 0), [], W0).ticket
    assert calm is not None and calm.priority not in (Priority.P1, Priority.P2)
    assert calm.outbox[0].due_at == W0 + timedelta(seconds=EVENT.group_wait_seconds)
    assert calm.notice_event_time == E0


def test_an_escalation_to_p1_goes_at_once_whatever_the_event_time() -> None:
    replay = Replay(TicketPolicy(rules=ONE_CHANNEL, settings=EVENT))
    replay.feed([signal("负面占比", 0), signal("紧急", 1)], wall_seconds=4)
    replay.deliver(W0 + timedelta(seconds=2))
    urgent = [n for n in replay.notices() if n.priority == Priority.P1]
    assert urgent and urgent[0].kind == NoticeKind.ESCALATED


# --- group_interval on event time ----------------------------------------------------


def test_news_within_group_interval_waits_for_event_time_then_goes() -> None:
    replay = Replay(TicketPolicy(rules=ONE_CHANNEL, settings=EVENT))
    replay.feed([signal("负面占比", 0)], wall_seconds=0)
    replay.drain(W0, seconds=2)
    assert [n.kind for n in replay.notices()] == [NoticeKind.OPENED]
    now = W0 + timedelta(seconds=3)
    ticket = next(iter(replay.tickets.values()))
    # A new signal 2 minutes of event time later waits as the pending update.
    joined = replay.policy.decide(signal("声量突增", 2), [ticket], now).ticket
    assert joined is not None and len(joined.outbox) == 1
    pending = joined.outbox[0]
    assert pending.kind == NoticeKind.UPDATED and pending.due_at > now
    # A repeat of a rule already told, 5 minutes of event time after the
    # opening, tells nothing new itself, but the interval is over: it goes.
    later = now + timedelta(seconds=1)
    again = replay.policy.decide(signal("负面占比", 5), [joined], later).ticket
    assert again is not None and again.outbox[0].due_at == later
    assert again.outbox[0].folded == 1
    assert again.notice_event_time == event_at(5)


def test_a_quiet_incidents_pending_update_goes_on_the_wall_clock_bound() -> None:
    replay = Replay(TicketPolicy(rules=ONE_CHANNEL, settings=EVENT))
    replay.feed([signal("负面占比", 0)], wall_seconds=0)
    replay.drain(W0, seconds=2)
    ticket = next(iter(replay.tickets.values()))
    joined = replay.policy.decide(
        signal("声量突增", 2), [ticket], W0 + timedelta(seconds=3)
    ).ticket
    assert joined is not None and ticket.last_notice_at is not None
    assert joined.outbox[0].due_at == ticket.last_notice_at + timedelta(
        seconds=EVENT.group_interval_seconds
    )


def test_repeats_are_held_and_counted_in_the_next_notice() -> None:
    replay = Replay(TicketPolicy(rules=ONE_CHANNEL, settings=EVENT))
    replay.feed([signal("负面声量", 0, 7.0)], wall_seconds=0)
    replay.drain(W0, seconds=2)
    ticket = next(iter(replay.tickets.values()))
    now = W0 + timedelta(seconds=3)
    for minutes in (5, 10, 15):  # a little more each time: no escalation
        decision = replay.policy.decide(
            signal("负面声量", minutes, 7.0 + minutes / 10), [ticket], now
        )
        assert decision.ticket is not None and not decision.notify
        ticket = decision.ticket
    assert ticket.outbox == () and ticket.held_updates == 3
    news = replay.policy.decide(signal("负面占比", 20), [ticket], now).ticket
    assert news is not None and news.held_updates == 0
    assert [(n.kind, n.folded, n.due_at) for n in news.outbox] == [
        (NoticeKind.UPDATED, 3, now)
    ]


# --- repeat_interval on event time --------------------------------------------------


def test_an_open_incident_is_told_again_after_repeat_interval_of_event_time() -> None:
    policy = TicketPolicy(
        rules=ONE_CHANNEL,
        settings=replace(EVENT, repeat_interval_seconds=3600, escalate_every=100),
    )
    replay = Replay(policy)
    # A steady incident: one repeat every 10 minutes for over two hours.
    replay.feed(
        [signal("负面声量", minutes, 7.0) for minutes in range(0, 131, 10)],
        wall_seconds=5,
    )
    replay.deliver(W0 + timedelta(seconds=5))
    kinds = [n.kind for n in replay.notices()]
    assert kinds == [NoticeKind.OPENED, NoticeKind.REPEAT, NoticeKind.REPEAT]
    # The 13:10 window came while the opening waited group_wait, a whole
    # group_interval of event time later: the opening told it (13:10).
    repeats = [
        trigger.event_time
        for trigger, _, decision, _ in replay.decisions
        if decision.notify and decision.outcome != OPENED
    ]
    assert repeats == [event_at(70), event_at(130)]
    assert replay.notices()[1].folded == 5, "the five held repeats before it"


def test_an_acknowledged_incident_is_not_repeated() -> None:
    policy = TicketPolicy(
        rules=ONE_CHANNEL, settings=replace(EVENT, repeat_interval_seconds=1800)
    )
    ticket = policy.decide(signal("负面声量", 0, 7.0), [], W0).ticket
    assert ticket is not None
    ticket = replace(ticket, outbox=())
    open_later = policy.decide(signal("负面声量", 40, 7.0), [ticket], W0)
    assert open_later.notify, "still open: told again"
    ticket, _ = policy.apply_action(ticket, "acknowledge", "王工", W0)
    assert ticket.status == TicketStatus.ACKNOWLEDGED
    ticket = replace(ticket, outbox=())
    later = policy.decide(signal("负面声量", 40, 7.0), [ticket], W0)
    assert later.ticket is not None and not later.notify
    assert later.ticket.held_updates == 1


def test_the_wall_clock_repeats_by_the_sweep_not_by_signals() -> None:
    policy = TicketPolicy(
        rules=ONE_CHANNEL, settings=replace(WALL, repeat_interval_seconds=3600)
    )
    replay = Replay(policy)
    replay.feed(
        [signal("负面声量", minutes, 7.0) for minutes in range(0, 121, 10)],
        wall_seconds=5,
    )
    assert [n.kind for n in replay.notices()] == [NoticeKind.OPENED]


# --- nothing lost, any sequence -----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["负面声量", "负面占比", "声量突增", "新关键词", "紧急"]),
            st.integers(min_value=0, max_value=8),  # event minutes since the last
            st.floats(min_value=1, max_value=200),
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([NoticeClock.EVENT, NoticeClock.WALL]),
)
def test_every_change_is_counted_in_some_notice(
    steps: list[tuple[str, int, float]], clock: NoticeClock
) -> None:
    replay = Replay(
        TicketPolicy(rules=ONE_CHANNEL, settings=TicketSettings(notice_clock=clock))
    )
    minutes = 0
    triggers = []
    for rule, gap, value in steps:
        minutes += gap
        triggers.append(signal(rule, minutes, value * THRESHOLDS[rule] / 10))
    replay.feed(triggers, wall_seconds=10)
    if clock == NoticeClock.EVENT:
        assert_updates_wait_group_interval_of_event_time(replay)
    replay.drain(W0 + timedelta(seconds=10), seconds=400)
    assert told(replay) == changes(replay)


# --- the sample incident with the shipped rules ------------------------------------


def test_the_air_conditioning_incident_makes_at_most_ten_notices() -> None:
    from monitor.config.rules import load_rules

    policy = load_rules(ROOT / "examples" / "rules.yaml").policy()
    assert policy.settings.notice_clock == NoticeClock.EVENT
    replay = Replay(policy)
    replay.feed(air_conditioning_incident(), wall_seconds=10)
    replay.drain(W0 + timedelta(seconds=10))
    assert len(replay.tickets) == 1
    notices = replay.notices()
    assert len(notices) <= 10, [(n.kind, n.priority, n.folded) for n in notices]
    assert told(replay) >= changes(replay)


# --- stored ---------------------------------------------------------------------


def test_the_notice_clock_is_stored_and_older_documents_still_read() -> None:
    from monitor.analysis.tickets.codec import ticket_from_dict, ticket_to_dict

    ticket = (
        TicketPolicy(rules=ONE_CHANNEL).decide(signal("负面声量", 0), [], W0).ticket
    )
    assert ticket is not None
    ticket = replace(ticket, held_updates=3)
    document = ticket_to_dict(ticket)
    assert document["notice_event_time"] == E0.isoformat()
    assert document["held_updates"] == 3
    assert ticket_from_dict(document) == ticket
    older = {
        k: v
        for k, v in document.items()
        if k not in ("notice_event_time", "held_updates")
    }
    read = ticket_from_dict(older)
    assert (read.notice_event_time, read.held_updates) == (None, 0)
    # Such a ticket is timed as never told in event time: its next update
    # goes at once, and the wall-clock sweep still repeats it.
    assert read == replace(ticket, notice_event_time=None, held_updates=0)
