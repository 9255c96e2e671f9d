"""Tickets in a real Elasticsearch (noida-db): the store, then the service on it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from monitor.analysis.tickets.codec import event_to_dict, ticket_to_dict
from monitor.analysis.tickets.lifecycle import apply_action
from monitor.analysis.tickets.model import (
    ACKNOWLEDGED,
    CLOSED,
    IN_PROGRESS,
    OPEN,
    RESOLVED,
    Evidence,
    InvalidTransitionError,
    Ticket,
    TicketEvent,
    Trigger,
)
from monitor.analysis.tickets.policy import (
    DUPLICATE,
    FOLDED,
    OPENED,
    SUPPRESSED,
    TicketPolicy,
)
from monitor.analysis.tickets.silences import Silence
from monitor.config.rules import RuleSet, load_rules
from monitor.local.embedded import EmbeddedServers, free_port
from monitor.services.ticketing import InvalidActionError, TicketNotFound, TicketService
from monitor.sinks.elasticsearch.tickets import (
    ConcurrentUpdate,
    TicketStore,
    TicketStoreUnavailable,
    Version,
)

pytestmark = pytest.mark.integration

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, 13, 0, tzinfo=CST)

RULES = """\
topics:
  空调异味:
    keywords: [空调, 异味]
    rules:
      - {name: 负面声量, kind: negative_volume, threshold: 6, window: 5m,
         channels: [hook, pager]}
  停车:
    keywords: [停车]
    rules:
      - {name: 负面声量, kind: negative_volume, threshold: 6, window: 5m}
teams:
  facilities:
    members: [王工, 李工]
    escalation: [张经理, 赵总]
channels:
  hook: {kind: webhook, url: "http://127.0.0.1:9/hook"}
  pager: {kind: webhook, url: "http://127.0.0.1:9/pager"}
routing:
  default_team: facilities
sla: {P3: {ack: 20m, resolve: 8h}}
"""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment


def trigger(
    minutes: float = 0, topic: str = "空调异味", value: float = 12.0
) -> Trigger:
    start = T0 + timedelta(minutes=minutes)
    return Trigger(
        topic=topic,
        rule="负面声量",
        kind="negative_volume",
        keyword=None,
        window_start=start,
        window_end=start + timedelta(minutes=5),
        observed_value=value,
        threshold=6.0,
        evidence=(Evidence(f"p-{minutes}", "空调有股怪味", 5_000, 1, start, "u1"),),
        keywords=("空调", "异味"),
    )


@pytest.fixture
def es_url(noida: EmbeddedServers) -> str:
    assert noida.addresses is not None
    return noida.addresses.es_url


@pytest.fixture
def prefix() -> str:
    return "tk" + uuid.uuid4().hex[:10]


@pytest.fixture
async def store(es_url: str, prefix: str) -> AsyncIterator[TicketStore]:
    store = TicketStore.connect(es_url, prefix)
    yield store
    await store.close()


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return load_rules(path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def service(
    store: TicketStore, rules: RuleSet, clock: Clock
) -> AsyncIterator[TicketService]:
    service = TicketService(store, lambda: rules, now=clock, retry_initial=0.05)
    yield service
    await service.close()


def opened(at: datetime = T0, minutes: float = 0) -> tuple[Ticket, TicketEvent]:
    decision = TicketPolicy().decide(trigger(minutes), [], at)
    assert decision.ticket is not None and decision.event is not None
    return decision.ticket, decision.event


# --- the store ----------------------------------------------------------------


async def test_new_ticket_is_created_once(store: TicketStore) -> None:
    ticket, event = opened()
    await store.save(ticket, [event], None)
    with pytest.raises(ConcurrentUpdate):
        await store.save(ticket, [event], None)
    found = await store.get(ticket.ticket_id)
    assert found is not None and found[0] == ticket
    assert await store.events(ticket.ticket_id) == [event]
    assert await store.get("T-nothing-1") is None


async def test_write_from_a_stale_version_conflicts(store: TicketStore) -> None:
    ticket, event = opened()
    await store.save(ticket, [event], None)
    found = await store.get(ticket.ticket_id)
    assert found is not None
    _, version = found
    acked, ack = apply_action(ticket, "acknowledge", "王工", T0)
    await store.save(acked, [ack], version)
    started, start = apply_action(ticket, "start", "李工", T0)
    with pytest.raises(ConcurrentUpdate):
        await store.save(started, [start], version)
    current = await store.get(ticket.ticket_id)
    assert current is not None and current[0].status == ACKNOWLEDGED
    assert [e.action for e in await store.events(ticket.ticket_id)] == [
        "open",
        "acknowledge",
    ]


async def test_events_carried_on_the_ticket_are_never_lost(store: TicketStore) -> None:
    """A writer that dies between the ticket write and the event write."""
    ticket, event = opened()
    await store.save(ticket, [event], None)
    found = await store.get(ticket.ticket_id)
    assert found is not None
    acked, ack = apply_action(ticket, "acknowledge", "王工", T0)
    # Only the ticket document is written, as by a process killed right after.
    document = {**ticket_to_dict(acked), "recent_events": [event_to_dict(ack)]}
    await store.client.index(
        index=f"{store.prefix}-tickets",
        id=ticket.ticket_id,
        document=document,
        if_seq_no=found[1].seq_no,
        if_primary_term=found[1].primary_term,
        refresh=True,
    )
    assert [e.event_id for e in await store.events(ticket.ticket_id)] == [
        event.event_id,
        ack.event_id,
    ]
    again = await store.get(ticket.ticket_id)
    assert again is not None
    started, start = apply_action(acked, "start", "王工", T0)
    await store.save(started, [start], again[1])
    await store.client.indices.refresh(index=f"{store.prefix}-ticket-events-*")
    stored = await store.client.search(
        index=f"{store.prefix}-ticket-events-*", size=10, query={"match_all": {}}
    )
    assert sorted(hit["_id"] for hit in stored["hits"]["hits"]) == sorted(
        [event.event_id, ack.event_id, start.event_id]
    )


async def test_search_filters_pages_and_related(store: TicketStore) -> None:
    saved = []
    for number, (topic, priority, owner) in enumerate(
        [("空调异味", "P1", "王工"), ("停车", "P3", "李工"), ("空调异味", "P3", None)]
    ):
        ticket, event = opened(T0 + timedelta(hours=number), minutes=number)
        ticket = replace(
            ticket,
            ticket_id=f"T-{number}",
            topic=topic,
            priority=priority,
            owner=owner,
            fingerprint=f"fp-{topic}",
            sequence=number + 1,
            team="facilities",
        )
        event = replace(event, ticket_id=ticket.ticket_id, event_id=f"T-{number}#1")
        await store.save(ticket, [event], None)
        saved.append(ticket)
    resolved, event = apply_action(saved[2], "resolve", "王工", T0)
    found = await store.get("T-2")
    assert found is not None
    await store.save(resolved, [event], found[1])

    page, total = await store.search(limit=2)
    assert total == 3 and [t.ticket_id for t in page] == ["T-2", "T-1"]
    page, total = await store.search(limit=2, offset=2)
    assert total == 3 and [t.ticket_id for t in page] == ["T-0"]
    assert (await store.search(status=OPEN))[1] == 2
    assert [t.ticket_id for t in (await store.search(status=[RESOLVED]))[0]] == ["T-2"]
    assert [t.ticket_id for t in (await store.search(topic="停车"))[0]] == ["T-1"]
    assert [t.ticket_id for t in (await store.search(priority="P1"))[0]] == ["T-0"]
    assert [t.ticket_id for t in (await store.search(owner="李工"))[0]] == ["T-1"]
    assert (await store.search(text="怪味"))[1] == 3
    assert [t.ticket_id for t in (await store.search(text="T-1"))[0]] == ["T-1"]
    assert (await store.search(text="没有这个词"))[1] == 0
    with pytest.raises(ValueError):
        await store.search(limit=0)

    related = await store.related("fp-空调异味", "facilities")
    assert [t.ticket_id for t in related[:2]] == [
        "T-2",
        "T-0",
    ]  # highest sequence first
    assert {t.ticket_id for t in related} == {"T-0", "T-1", "T-2"}
    assert {t.ticket_id for t in await store.active()} == {"T-0", "T-1"}


async def test_silences_are_stored_listed_and_deleted(store: TicketStore) -> None:
    silence = Silence("S-1", T0, T0 + timedelta(hours=1), "小李", "已知问题", "停车")
    later = Silence("S-2", T0, T0 + timedelta(hours=3), "小李", "维修", rule="负面声量")
    await store.add_silence(silence)
    await store.add_silence(later)
    with pytest.raises(ConcurrentUpdate):
        await store.add_silence(silence)
    assert await store.get_silence("S-1") == silence
    assert await store.silences() == [silence, later]
    assert await store.silences(T0 + timedelta(hours=2)) == [later]
    ended = replace(silence, expires_at=T0 + timedelta(minutes=1))
    await store.put_silence(ended)
    assert await store.silences(T0 + timedelta(minutes=2)) == [later]
    assert await store.delete_silence("S-2") is True
    assert await store.delete_silence("S-2") is False
    assert await store.get_silence("S-2") is None


async def test_unreachable_elasticsearch_is_a_clear_transient_error(
    prefix: str,
) -> None:
    store = TicketStore.connect(
        f"http://127.0.0.1:{free_port()}", prefix, request_timeout=2
    )
    try:
        with pytest.raises(TicketStoreUnavailable, match="unreachable"):
            await store.get("T-1")
        assert await store.ping() is False
    finally:
        await store.close()


# --- the service ----------------------------------------------------------------


async def test_trigger_opens_one_ticket_and_repeats_fold_into_it(
    service: TicketService, store: TicketStore, clock: Clock
) -> None:
    clock.advance(minutes=5)
    first = await service.handle_trigger(trigger(0))
    assert first.outcome == OPENED and first.ticket is not None
    ticket_id = first.ticket.ticket_id
    assert first.ticket.team == "facilities" and first.ticket.owner == "王工"
    stored, events = await service.get(ticket_id)
    assert stored == first.ticket and [e.action for e in events] == ["open"]

    again = await service.handle_trigger(trigger(0))
    assert again.outcome == DUPLICATE

    clock.advance(minutes=5)
    folded = await service.handle_trigger(trigger(5, value=14.0))
    assert folded.outcome == FOLDED and folded.ticket is not None
    assert folded.ticket.ticket_id == ticket_id and folded.ticket.occurrences == 2
    tickets, total = await service.list()
    assert total == 1 and tickets[0].occurrences == 2
    assert [e.action for e in (await service.get(ticket_id))[1]] == ["open", "fold"]


async def test_lifecycle_records_every_action(
    service: TicketService, clock: Clock
) -> None:
    decision = await service.handle_trigger(trigger(0))
    assert decision.ticket is not None
    ticket_id = decision.ticket.ticket_id
    for action, status in [
        ("acknowledge", ACKNOWLEDGED),
        ("start", IN_PROGRESS),
        ("resolve", RESOLVED),
        ("close", CLOSED),
    ]:
        clock.advance(minutes=1)
        ticket, event = await service.act(ticket_id, action, "王工", note=f"{action}!")
        assert ticket.status == status and event.actor == "王工"
    with pytest.raises(InvalidTransitionError, match="only allowed from"):
        await service.act(ticket_id, "acknowledge", "王工")
    ticket, events = await service.get(ticket_id)
    assert ticket.status == CLOSED and ticket.closed_at == clock()
    assert [(e.action, e.from_status, e.to_status) for e in events] == [
        ("open", None, OPEN),
        ("acknowledge", OPEN, ACKNOWLEDGED),
        ("start", ACKNOWLEDGED, IN_PROGRESS),
        ("resolve", IN_PROGRESS, RESOLVED),
        ("close", RESOLVED, CLOSED),
    ]
    assert events[2].note == "start!"


async def test_bad_requests_are_refused_before_touching_a_ticket(
    service: TicketService,
) -> None:
    decision = await service.handle_trigger(trigger(0))
    assert decision.ticket is not None
    ticket_id = decision.ticket.ticket_id
    with pytest.raises(InvalidActionError, match="action"):
        await service.act(ticket_id, "explode", "王工")
    with pytest.raises(InvalidActionError, match="owner"):
        await service.act(ticket_id, "acknowledge", "王工", owner="李工")
    with pytest.raises(InvalidActionError, match="owner"):
        await service.act(ticket_id, "assign", "王工", owner=3)
    with pytest.raises(TicketNotFound):
        await service.act("T-missing-1", "acknowledge", "王工")
    ticket, _ = await service.act(ticket_id, "assign", "王工", owner="李工")
    assert ticket.owner == "李工" and ticket.revision == 2


class RacingStore(TicketStore):
    """A real store whose first read waits until the other process read too."""

    def __init__(self, *args: Any, barrier: asyncio.Barrier, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.barrier = barrier
        self.waited = False

    async def get(self, ticket_id: str) -> tuple[Ticket, Version] | None:
        found = await super().get(ticket_id)
        if not self.waited:
            self.waited = True
            await self.barrier.wait()
        return found


async def test_two_processes_acting_at_once_both_land(
    service: TicketService, rules: RuleSet, clock: Clock, es_url: str, prefix: str
) -> None:
    decision = await service.handle_trigger(trigger(0))
    assert decision.ticket is not None
    ticket_id = decision.ticket.ticket_id
    barrier = asyncio.Barrier(2)
    stores = [
        RacingStore(TicketStore.connect(es_url, prefix).client, prefix, barrier=barrier)
        for _ in range(2)
    ]
    first, second = (TicketService(s, lambda: rules, now=clock) for s in stores)
    try:
        results = await asyncio.gather(
            first.act(ticket_id, "comment", "王工", note="在看了"),
            second.act(ticket_id, "acknowledge", "李工"),
        )
    finally:
        for s in stores:
            await s.close()
    assert all(s.waited for s in stores)
    ticket, events = await service.get(ticket_id)
    assert ticket.status == ACKNOWLEDGED and ticket.revision == 3
    assert sorted(e.action for e in events[1:]) == ["acknowledge", "comment"]
    assert {r[1].event_id for r in results} == {f"{ticket_id}#2", f"{ticket_id}#3"}


async def test_two_processes_acknowledging_at_once_one_gets_a_clean_refusal(
    service: TicketService, rules: RuleSet, clock: Clock, es_url: str, prefix: str
) -> None:
    decision = await service.handle_trigger(trigger(0))
    assert decision.ticket is not None
    ticket_id = decision.ticket.ticket_id
    barrier = asyncio.Barrier(2)
    stores = [
        RacingStore(TicketStore.connect(es_url, prefix).client, prefix, barrier=barrier)
        for _ in range(2)
    ]
    services = [TicketService(s, lambda: rules, now=clock) for s in stores]
    try:
        results = await asyncio.gather(
            *(
                s.act(ticket_id, "acknowledge", name)
                for s, name in zip(services, ["王工", "李工"], strict=True)
            ),
            return_exceptions=True,
        )
    finally:
        for s in stores:
            await s.close()
    assert sum(isinstance(r, tuple) for r in results) == 1
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], InvalidTransitionError)
    _, events = await service.get(ticket_id)
    assert [e.action for e in events] == ["open", "acknowledge"]


async def test_two_processes_opening_one_incident_make_one_ticket(
    rules: RuleSet, clock: Clock, es_url: str, prefix: str
) -> None:
    stores = [TicketStore.connect(es_url, prefix) for _ in range(2)]
    services = [TicketService(s, lambda: rules, now=clock) for s in stores]
    try:
        await stores[0].ensure_templates()
        decisions = await asyncio.gather(
            services[0].handle_trigger(trigger(0)),
            services[1].handle_trigger(trigger(5)),
        )
        tickets, total = await services[0].list()
    finally:
        for s in stores:
            await s.close()
    assert sorted(d.outcome for d in decisions) == [FOLDED, OPENED]
    assert total == 1 and tickets[0].occurrences == 2


async def test_sla_sweep_escalates_past_the_ack_deadline_once(
    service: TicketService, clock: Clock
) -> None:
    decision = await service.handle_trigger(trigger(0))
    assert decision.ticket is not None and decision.ticket.priority == "P3"
    ticket_id = decision.ticket.ticket_id
    assert await service.sweep_sla(clock.advance(minutes=19)) == []
    events = await service.sweep_sla(clock.advance(minutes=2))
    assert [e.action for e in events] == ["sla_breach"]
    ticket, trail = await service.get(ticket_id)
    assert ticket.priority == "P2" and ticket.escalation_level == 1
    assert ticket.escalation_contact == "张经理"
    assert trail[-1].details["deadline"] == "ack"
    assert await service.sweep_sla(clock.advance(seconds=1)) == []


async def test_a_silence_added_through_the_service_suppresses(
    service: TicketService, clock: Clock
) -> None:
    silence = await service.add_silence(
        author="小李",
        reason="已知问题，维修中",
        expires_at=clock() + timedelta(hours=1),
        topic="空调异味",
    )
    assert [s.silence_id for s in await service.silences()] == [silence.silence_id]
    muted = await service.handle_trigger(trigger(0))
    assert muted.outcome == SUPPRESSED and silence.silence_id in muted.reason
    other = await service.handle_trigger(trigger(0, topic="停车"))
    assert other.outcome == OPENED
    clock.advance(minutes=1)
    await service.expire_silence(silence.silence_id, "小李")
    assert await service.silences() == []
    assert (await service.handle_trigger(trigger(0))).outcome == OPENED


async def test_copies_counts_posts_sharing_an_evidence_texts_fingerprint(
    store: TicketStore, prefix: str
) -> None:
    from monitor.analysis.simhash import simhash
    from monitor.sinks.elasticsearch.templates import post_index_template

    template = post_index_template(prefix)
    await store.client.indices.put_index_template(name=f"{prefix}-posts", **template)
    origin = "星河广场的空调坏了三天了，热得受不了，物业也不管"
    other = "今天的会员活动很热闹，抽奖送了好多礼品"
    index = f"{prefix}-posts-2026.11.20"
    docs = [
        ("p-origin", origin, "2026-11-20T09:00:00+08:00"),
        ("p-repost-1", f"转发微博 //@小王: {origin}", "2026-11-20T09:05:00+08:00"),
        (
            "p-repost-2",
            f"//@阿狸: 太真实了//@小王: {origin}",
            "2026-11-20T09:06:00+08:00",
        ),
        ("p-late", origin, "2026-11-23T09:00:00+08:00"),  # outside the period
        ("p-other", other, "2026-11-20T09:07:00+08:00"),
    ]
    for post_id, text, published in docs:
        await store.client.index(
            index=index,
            id=post_id,
            document={
                "post_id": post_id,
                "text": text,
                "published_at": published,
                "simhash": simhash(text),
            },
        )
    await store.client.indices.refresh(index=index)
    since = datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc)
    until = datetime(2026, 11, 21, 0, 0, tzinfo=timezone.utc)
    counts = await store.copies(["p-origin", "p-other", "p-missing"], since, until)
    assert counts == {"p-origin": 3, "p-other": 1}
    assert await store.copies([], since, until) == {}
