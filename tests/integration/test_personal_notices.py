"""Personal notices end to end, in process, as the worker runs them.

Tickets live on the local noida-db (Elasticsearch protocol) server; people act
through the ticket API on a real aiohttp server; the notice sender (woken by
the service, as in the worker) delivers the outboxes with the rules file's
channels: email to the real aiosmtpd server of
:class:`~monitor.local.receivers.LocalReceivers`, SMS to a local gateway that
checks the ``http_sms`` HMAC header (:mod:`tests.integration.test_sms`), the
group webhook to LocalReceivers' HTTP server. The SLA sweep escalates.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.analysis.tickets.model import RuleKind, Ticket, TicketEvent, Trigger
from monitor.config.rules import RuleSet, load_rules
from monitor.local.embedded import EmbeddedServers
from monitor.local.receivers import LocalReceivers
from monitor.services.notices import NoticeSender
from monitor.services.ticketing import TicketService
from monitor.sinks.elasticsearch.tickets import TicketStore
from monitor.sinks.notifiers import Notifier
from monitor.web.api import api_app
from monitor.web.auth import Authenticator
from tests.integration.test_sms import GatewayMessage, SmsVendors, running_vendors
from tests.integration.test_tickets_api import RESPONDER, T0, TOKENS, Api, serve

pytestmark = pytest.mark.integration

CONSOLE = "https://ops.example"
RULES = """\
topics:
  空调异味:
    keywords: [空调]
    rules:
      - {name: 负面声量, kind: negative_volume, threshold: 6, channels: [ops-webhook]}
  停车场:
    keywords: [停车]
    rules:
      - {name: 负面声量, kind: negative_volume, threshold: 6}
owners:
  王工: {email: wang@example.com, mobile: "13800000011"}
  李工: {email: li@example.com}
  赵工: {email: zhao@example.com, mobile: "13800000013"}
  张经理: {email: zhang@example.com, mobile: "13800000001"}
  孙总: {mobile: "13800000002"}
teams:
  facilities: {members: [王工], escalation: [张经理, 孙总]}
channels:
  ops-webhook: {kind: webhook, url: "${ALERT_WEBHOOK_URL}",
                secret: "${ALERT_WEBHOOK_SECRET}"}
  duty-email:
    kind: email
    smtp_host: ${ALERT_SMTP_HOST}
    smtp_port: ${ALERT_SMTP_PORT}
    from: monitor@example.com
    to: [duty@example.com]
  personal-sms:
    kind: http_sms
    url: ${ALERT_SMS_GATEWAY_URL}
    secret: ${ALERT_SMS_GATEWAY_SECRET}
    body: {phone: "{mobile}", message: "{text}", ref: "{delivery_id}"}
personal: {email: duty-email, sms: personal-sms}
routing: {default_team: facilities}
sla:
  P3: {ack: 30m, resolve: 4h}
  P2: {ack: 15m, resolve: 2h}
tickets: {group_wait: 0}
"""


def trigger(topic: str = "空调异味") -> Trigger:
    return Trigger(
        topic,
        "负面声量",
        RuleKind.NEGATIVE_VOLUME,
        None,
        T0,
        T0 + timedelta(minutes=5),
        12,
        6,
    )


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: T0 + timedelta(hours=1))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Desk:
    """The service, its sender, the API and the receivers of one test."""

    service: TicketService
    sender: NoticeSender
    clock: Clock
    api: Api
    mail: LocalReceivers
    sms: SmsVendors

    def emails(self) -> list[tuple[str, str]]:
        """``(recipient, subject)`` of every mail the SMTP server took."""
        return [
            (to, item.body["subject"])
            for item in self.mail.by_channel().get("email", [])
            for to in item.body["to"]
        ]

    def texts(self, mobile: str) -> list[GatewayMessage]:
        return [m for m in self.sms.gateway if m.body["phone"] == mobile]

    async def act(self, ticket_id: str, **body: str) -> dict[str, Any]:
        status, answer = await self.api.call(
            "POST", f"/tickets/{ticket_id}/actions", RESPONDER, body=body
        )
        assert status == 200, answer
        return dict(answer["ticket"])


async def arrives(what: str, found: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Wait (without blocking the loop) until ``found()`` is truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def desk(
    noida: EmbeddedServers,
    tmp_path: Path,
    rules_text: str = RULES,
    *,
    rate_per_minute: int = 20,
    p1_reserve: int = 2,
    run_sender: bool = True,
) -> AsyncIterator[Desk]:
    assert noida.addresses is not None
    path = tmp_path / "rules.yaml"
    path.write_text(rules_text, encoding="utf-8")
    rules: RuleSet = load_rules(path)
    with LocalReceivers() as mail:
        async with running_vendors() as sms:
            # As the worker builds it: channels only; the sender hands in the
            # owners book and the personal section each round.
            notifier = Notifier(
                rules.channels,
                {**mail.env(), **sms.env()},
                console_url=CONSOLE,
                rate_per_minute=rate_per_minute,
                backoff=0.01,
                max_backoff=0.05,
                timeout=3.0,
            )
            store = TicketStore.connect(
                noida.addresses.es_url, "tp" + uuid.uuid4().hex[:10]
            )
            clock = Clock()
            service = TicketService(store, lambda: rules, notifier=notifier, now=clock)
            sender = NoticeSender(service, poll_seconds=0.2, p1_reserve=p1_reserve)
            runner, base = await serve(
                api_app(service, Authenticator.from_spec(TOKENS))
            )
            await notifier.start()
            if run_sender:
                sender.start()
            try:
                async with aiohttp.ClientSession() as session:
                    yield Desk(service, sender, clock, Api(base, session), mail, sms)
            finally:
                await sender.stop()
                await runner.cleanup()
                await notifier.close()
                await service.close()
                await store.close()


async def _settled(d: Desk, ticket_id: str) -> tuple[Ticket, list[TicketEvent]]:
    """The ticket once the sender has recorded every outcome."""

    async def empty() -> bool:
        ticket, _ = await d.service.get(ticket_id)
        return not ticket.outbox

    deadline = time.monotonic() + 5
    while not await empty():
        assert time.monotonic() < deadline, "the outbox never emptied"
        await asyncio.sleep(0.05)
    return await d.service.get(ticket_id)


async def test_the_assignee_and_the_escalation_contacts_are_told_personally(
    noida: EmbeddedServers, tmp_path: Path
) -> None:
    async with desk(noida, tmp_path) as d:
        decision = await d.service.handle_trigger(trigger())
        assert decision.ticket is not None and decision.ticket.owner == "王工"
        ticket_id = decision.ticket.ticket_id

        # Opened: the group webhook, and the assignee by email and SMS.
        (wang,) = await arrives("王工's SMS", lambda: d.texts("13800000011"))
        assert wang.body["message"].startswith(f"[P3] 新工单 {ticket_id} 空调异味")
        assert wang.body["message"].endswith(
            f"负责人:王工 {CONSOLE}/console/tickets/{ticket_id}"
        )
        assert wang.delivery_id == f"{ticket_id}#n1@@王工/sms"
        await arrives(
            "王工's mail",
            lambda: (
                ("wang@example.com", f"[P3] 新工单 {ticket_id} 空调异味 负面声量")
                in d.emails()
            ),
        )
        await arrives("the webhook", lambda: d.mail.by_channel().get("webhook"))

        # Assigned to 李工 (no mobile in the book): an email only, to him only.
        assigned = await d.act(ticket_id, action="assign", owner="李工")
        assert assigned["owner"] == "李工"
        subject = f"[P3] 指派给你 {ticket_id} 空调异味 负面声量"
        await arrives("李工's mail", lambda: ("li@example.com", subject) in d.emails())

        # Transferred to 赵工: email and SMS.
        await d.act(ticket_id, action="transfer", owner="赵工")
        (zhao,) = await arrives("赵工's SMS", lambda: d.texts("13800000013"))
        assert zhao.body["message"].startswith(f"[P3] 指派给你 {ticket_id}")
        assert "负责人:赵工" in zhao.body["message"]
        await arrives(
            "赵工's mail", lambda: ("zhao@example.com", subject) in d.emails()
        )

        # The ack deadline passes: level 1 tells 张经理, the owner hears too.
        ticket, _ = await d.service.get(ticket_id)
        d.clock.now = ticket.ack_due + timedelta(seconds=1)
        (breach,) = await d.service.sweep_sla()
        assert breach.details["escalation_contact"] == "张经理"
        (zhang,) = await arrives("张经理's SMS", lambda: d.texts("13800000001"))
        assert zhang.body["message"].startswith(f"[P2] 升级 {ticket_id}")
        subject = f"[P2] 升级 {ticket_id} 空调异味 负面声量"
        await arrives(
            "张经理's mail", lambda: ("zhang@example.com", subject) in d.emails()
        )
        await arrives("赵工's escalation SMS", lambda: len(d.texts("13800000013")) == 2)

        # The next deadline passes too: level 2 tells the next contact, 孙总.
        ticket, _ = await d.service.get(ticket_id)
        d.clock.now = ticket.ack_due + timedelta(seconds=1)
        (breach,) = await d.service.sweep_sla()
        assert breach.details["escalation_contact"] == "孙总"
        (sun,) = await arrives("孙总's SMS", lambda: d.texts("13800000002"))
        assert sun.body["message"].startswith(f"[P1] 升级 {ticket_id}")
        assert sun.delivery_id.endswith("@@孙总/sms")

        ticket, events = await _settled(d, ticket_id)

    assert d.sms.gateway_refused == [], "every SMS carried a valid signature"
    assert len(d.texts("13800000011")) == 1, "王工 was told of the opening only"
    assert len(d.texts("13800000001")) == 1, "张经理 once, at level 1"
    mails = d.emails()
    assert [to for to, _ in mails].count("li@example.com") == 1
    assert all(to != "duty@example.com" for to, _ in mails), "personal only"
    assert ticket.delivery["@李工/email"] == "sent"
    assert "@李工/sms" not in ticket.delivery
    assert ticket.delivery["@孙总/sms"] == "sent"
    delivered = {
        e.details["channel"]
        for e in events
        if e.action == "delivery" and e.details["status"] == "sent"
    }
    assert {"@王工/email", "@赵工/sms", "@张经理/email", "ops-webhook"} <= delivered


async def test_assignment_notices_over_the_channel_limit_go_out_as_one_digest(
    noida: EmbeddedServers, tmp_path: Path
) -> None:
    rules = RULES.replace(
        "personal: {email: duty-email, sms: personal-sms}",
        "personal: {email: duty-email, on: [assigned]}",
    )
    # One message a minute on the email channel, no slot kept for P1: two
    # assignments due at once must share it.
    async with desk(
        noida, tmp_path, rules, rate_per_minute=1, p1_reserve=0, run_sender=False
    ) as d:
        ids = []
        for topic in ("空调异味", "停车场"):
            decision = await d.service.handle_trigger(trigger(topic))
            assert decision.ticket is not None
            ids.append(decision.ticket.ticket_id)
            await d.act(decision.ticket.ticket_id, action="assign", owner="李工")
        assert await d.sender.run_once() >= 2

        mails = await arrives("the digest", d.emails)
        for ticket_id in ids:
            ticket, _ = await d.service.get(ticket_id)
            assert ticket.delivery["@李工/email"] == "sent"
            assert not any("@李工/email" in n.channels for n in ticket.outbox)

    assert mails == [("li@example.com", "[P3] 汇总：2 个工单的 2 条通知（通道限速）")]
