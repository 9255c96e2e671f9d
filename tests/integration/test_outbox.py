"""Notices never lost: the outbox on a real Elasticsearch (noida-db), sent by the
real notifier to real local receivers (webhook and DingTalk stand-ins).

Faults are injected by wrapping the real client (an outage) or the real store
(a sender that dies between the send and the clear)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from elastic_transport import ConnectionError as TransportConnectionError

from monitor.analysis.tickets.model import Evidence, Trigger
from monitor.config.rules import RuleSet, load_rules
from monitor.local.embedded import EmbeddedServers
from monitor.local.receivers import LocalReceivers, Received
from monitor.services.notices import NoticeSender
from monitor.services.ticketing import TicketService
from monitor.sinks.elasticsearch.bulk import es_client
from monitor.sinks.elasticsearch.tickets import TicketStore, TicketStoreUnavailable
from monitor.sinks.notifiers import Notifier

pytestmark = pytest.mark.integration

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, 13, 0, tzinfo=CST)

RULES = """\
topics:
  空调异味:
    keywords: [空调, 异味]
    rules:
      - {name: 负面声量, kind: negative_volume, threshold: 6, window: 5m,
         channels: [hook, ding]}
      - {name: 负面占比, kind: negative_share, threshold: 0.8, min_volume: 10,
         window: 5m, channels: [hook]}
      - {name: 紧急, kind: negative_volume, threshold: 6, window: 5m,
         min_priority: P1, channels: [ding]}
teams:
  facilities:
    members: [王工, 李工]
channels:
  hook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}", secret: "${ALERT_WEBHOOK_SECRET}"}
  ding: {kind: dingtalk, webhook: "${ALERT_DINGTALK_WEBHOOK}",
         secret: "${ALERT_DINGTALK_SECRET}"}
routing:
  default_team: facilities
"""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.moment = T0

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def trigger(
    minutes: float = 0,
    *,
    rule: str = "负面声量",
    kind: str = "negative_volume",
    keyword: str | None = None,
    value: float = 12.0,
) -> Trigger:
    start = T0 + timedelta(minutes=minutes)
    return Trigger(
        topic="空调异味",
        rule=rule,
        kind=kind,
        keyword=keyword,
        window_start=start,
        window_end=start + timedelta(minutes=5),
        observed_value=value,
        threshold=6.0 if kind == "negative_volume" else 0.8,
        evidence=(Evidence(f"p-{minutes}-{keyword}", "空调有股怪味", 50, 1, start),),
        crossing_received_at=T0 - timedelta(seconds=1),
    )


class Outage:
    """The real client, refusing every request while ``down`` (a dead server)."""

    CALLS = frozenset({"index", "get", "search", "bulk", "delete"})

    def __init__(self, client: Any, state: dict[str, Any] | None = None) -> None:
        self._client = client
        self._state = state if state is not None else {"down": False, "refused": 0}

    @property
    def down(self) -> bool:
        return bool(self._state["down"])

    @down.setter
    def down(self, value: bool) -> None:
        self._state["down"] = value

    @property
    def refused(self) -> int:
        return int(self._state["refused"])

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "options":
            return lambda *a, **kw: Outage(attribute(*a, **kw), self._state)
        if name not in self.CALLS:
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                self._state["refused"] += 1
                raise TransportConnectionError("injected outage")
            return await attribute(*args, **kwargs)

        return call


@pytest.fixture
def receivers() -> Iterator[LocalReceivers]:
    with LocalReceivers() as running:
        yield running


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return load_rules(path)


@pytest.fixture
def es_url(noida: EmbeddedServers) -> str:
    assert noida.addresses is not None
    return noida.addresses.es_url


@pytest.fixture
def outage(es_url: str) -> Outage:
    return Outage(es_client(es_url, request_timeout=10))


@pytest.fixture
async def store(outage: Outage) -> AsyncIterator[TicketStore]:
    store = TicketStore(outage, "ob" + uuid.uuid4().hex[:10], retry_after=0.05)  # type: ignore[arg-type]
    yield store
    await outage._client.close()


@pytest.fixture
async def notifier(
    rules: RuleSet, receivers: LocalReceivers
) -> AsyncIterator[Notifier]:
    async with Notifier(
        rules.channels, receivers.env(), retries=0, backoff=0.0
    ) as running:
        yield running


@pytest.fixture
def service(store: TicketStore, rules: RuleSet, notifier: Notifier) -> TicketService:
    return TicketService(
        store,
        lambda: rules,
        notifier=notifier,
        now=Clock(),
        retry_initial=0.05,
        retry_max=0.2,
    )


def clock_of(service: TicketService) -> Clock:
    assert isinstance(service.now, Clock)
    return service.now


def received(receivers: LocalReceivers, channel: str) -> list[Received]:
    return receivers.by_channel().get(channel, [])


async def test_a_notice_reaches_each_channel_once_and_the_ticket_shows_it(
    service: TicketService, receivers: LocalReceivers
) -> None:
    latencies: list[float] = []
    sender = NoticeSender(service, on_first_accept=latencies.append)
    decision = await service.handle_trigger(trigger(0))
    assert decision.ticket is not None and decision.ticket.outbox
    ticket_id = decision.ticket.ticket_id
    # A P3 incident waits group_wait (1 s) for signals that come with it.
    await service.handle_trigger(trigger(0, rule="负面占比", kind="negative_share"))
    assert await sender.run_once() == 0
    clock_of(service).advance(1)
    assert await sender.run_once() == 2
    hooks, dings = received(receivers, "webhook"), received(receivers, "dingtalk")
    assert len(hooks) == 1 and len(dings) == 1, "one notice for two signals"
    assert hooks[0].headers["X-Monitor-Delivery"] == f"{ticket_id}#n1@hook"
    assert len(hooks[0].body["ticket"]["signals"]) == 2
    ticket, events = await service.get(ticket_id)
    assert ticket.outbox == () and ticket.delivery == {"hook": "sent", "ding": "sent"}
    assert [e.details["channel"] for e in events if e.action == "delivery"] == [
        "hook",
        "ding",
    ] or {e.details["channel"] for e in events if e.action == "delivery"} == {
        "hook",
        "ding",
    }
    assert latencies == [pytest.approx(2.0)]
    assert await sender.run_once() == 0, "nothing is sent twice"


async def test_a_sender_killed_after_sending_resends_with_the_same_delivery_id(
    service: TicketService, store: TicketStore, receivers: LocalReceivers
) -> None:
    await service.handle_trigger(trigger(0, rule="紧急"))  # P1: due at once
    real_save = store.save

    async def die(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed between the send and the clear")

    store.save = die  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        await NoticeSender(service).run_once()
    store.save = real_save  # type: ignore[method-assign]
    assert len(received(receivers, "dingtalk")) == 1
    assert await NoticeSender(service).run_once() == 1  # the next owner
    dings = received(receivers, "dingtalk")
    assert len(dings) == 2, "at least once: sent again after the crash"
    assert await NoticeSender(service).run_once() == 0, "then cleared"


async def test_a_notice_saved_before_a_kill_is_sent_once_by_the_next_sender(
    service: TicketService, receivers: LocalReceivers
) -> None:
    await service.handle_trigger(trigger(0, rule="紧急"))
    # The worker dies here: the change is saved, nothing was sent.
    assert received(receivers, "dingtalk") == []
    for _ in range(3):
        await NoticeSender(service).run_once()
    assert len(received(receivers, "dingtalk")) == 1, "exactly once"


async def test_an_elasticsearch_outage_delays_notices_and_loses_none(
    service: TicketService, outage: Outage, receivers: LocalReceivers
) -> None:
    sender = NoticeSender(service, poll_seconds=0.05)
    first = await service.handle_trigger(trigger(0, rule="紧急"))
    assert first.ticket is not None
    outage.down = True
    during = asyncio.create_task(
        service.handle_trigger(trigger(0, rule="负面占比", kind="negative_share"))
    )
    with pytest.raises(TicketStoreUnavailable):
        await sender.run_once()
    sender.start()
    await asyncio.sleep(0.5)
    assert received(receivers, "dingtalk") == [], "nothing goes while ES is down"
    assert not during.done(), "the trigger waits for Elasticsearch"
    await sender.stop()
    outage.down = False
    await asyncio.wait_for(during, 10)
    assert outage.refused > 0
    await sender.run_once()
    assert len(received(receivers, "dingtalk")) == 1
    assert len(received(receivers, "webhook")) == 1, "hook joined with the signal"
    ticket, _ = await service.get(first.ticket.ticket_id)
    assert ticket.outbox == () and len(ticket.signals) == 2
    text = received(receivers, "dingtalk")[0].body["markdown"]["text"]
    assert "另外 1 条更新" in text


async def test_25_notices_in_a_minute_reach_a_robot_in_at_most_20_messages_p1_first(
    service: TicketService, rules: RuleSet, receivers: LocalReceivers
) -> None:
    per_keyword = replace(
        rules,
        rules=tuple(replace(rule, group_by="topic,keyword") for rule in rules.rules),
    )
    service.rules = lambda: per_keyword
    for number in range(25):
        rule = "紧急" if number in (5, 17, 23) else "负面声量"
        await service.handle_trigger(trigger(0, rule=rule, keyword=f"k{number}"))
    clock_of(service).advance(1)
    await NoticeSender(service).run_once()
    dings = received(receivers, "dingtalk")
    assert len(dings) <= 20
    titles = [item.body["markdown"]["title"] for item in dings]
    assert all(title.startswith("[P1]") for title in titles[:3]), titles[:4]
    assert not any(title.startswith("[P1]") for title in titles[3:-1])
    assert "汇总" in titles[-1], "the rest went as one digest"
    digest = dings[-1].body["markdown"]["text"]
    singles = len(dings) - 1
    assert digest.count("新工单") == 25 - singles, "nothing was dropped"
    assert await NoticeSender(service).run_once() == 0
