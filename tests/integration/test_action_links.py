"""One-tap action links end to end, on real servers.

A DingTalk ActionCard built from a ticket's notice is POSTed (signed as
DingTalk requires) to a local aiohttp receiver standing in for DingTalk; the
link in its button is opened the way the console page does (POST of the
fragment's token to the action-link API on a real aiohttp server), against a
real TicketService and ledger on noida-db's Elasticsearch protocol.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from monitor.analysis.tickets.lifecycle import record_delivery
from monitor.config.rules import RuleSet, load_rules
from monitor.local.embedded import EmbeddedServers, free_port
from monitor.services.ticketing import TicketService
from monitor.sinks.elasticsearch.links import LinkLedger
from monitor.sinks.elasticsearch.tickets import TicketStore
from monitor.sinks.notifiers import build_message, dingtalk_payload, dingtalk_url
from monitor.sinks.notifiers.payloads import encode_json
from monitor.web.actionlinks import ActionLinks, action_links_app
from monitor.web.links import ActionLinkIssuer, ActionLinkKeys
from tests.integration.test_tickets_api import RULES, T0, trigger

pytestmark = pytest.mark.integration

DINGTALK_TOKEN = "ding-token"
DINGTALK_SECRET = "SECding-secret"
KEY_SPEC = "k1:" + "q" * 40
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class DingTalk:
    """A local DingTalk robot: checks the token and signature, keeps the cards."""

    url: str = ""
    cards: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != DINGTALK_TOKEN:
            return web.json_response({"errcode": 300001, "errmsg": "token not exist"})
        timestamp = request.query.get("timestamp", "")
        expected = base64.b64encode(
            hmac.new(
                DINGTALK_SECRET.encode(),
                f"{timestamp}\n{DINGTALK_SECRET}".encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        if request.query.get("sign") != expected:
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        payload = await request.json()
        card = payload.get("actionCard") or {}
        if payload.get("msgtype") != "actionCard" or not card.get("btns"):
            return web.json_response({"errcode": 40035, "errmsg": "bad message"})
        self.cards.append(payload)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@dataclass
class Env:
    service: TicketService
    issuer: ActionLinkIssuer
    ledger: LinkLedger
    clock: Clock
    base: str
    session: aiohttp.ClientSession
    dingtalk: DingTalk

    async def call(
        self,
        path: str,
        body: Any = None,
        *,
        method: str = "POST",
        raw: bytes | None = None,
    ) -> tuple[int, Any, Any]:
        async with self.session.request(
            method, self.base + path, json=body if raw is None else None, data=raw
        ) as response:
            for name, value in HEADERS.items():
                assert response.headers.get(name) == value, (name, response.headers)
            assert response.content_type == "application/json"
            return response.status, await response.json(), response.headers

    async def redeem(self, token: str) -> tuple[int, Any]:
        status, body, _ = await self.call("/redeem", {"token": token})
        return status, body

    async def inspect(self, token: str) -> tuple[int, Any]:
        status, body, _ = await self.call("/inspect", {"token": token})
        return status, body

    async def notify(self, ticket_id: str, actor: str = "王工") -> dict[str, str]:
        """Send the ticket's DingTalk card; return its buttons' tokens by action."""
        ticket, _ = await self.service.get(ticket_id)
        message = build_message(ticket, "opened", console_url=self.issuer.console_url)
        actions = self.issuer.buttons(ticket, "ops-dingtalk", actor)
        payload = dingtalk_payload(replace(message, actions=actions))
        stamp = int(time.time() * 1000)
        url = dingtalk_url(
            f"{self.dingtalk.url}/robot/send?access_token={DINGTALK_TOKEN}",
            DINGTALK_SECRET,
            stamp,
        )
        async with self.session.post(
            url, data=encode_json(payload), headers={"Content-Type": "application/json"}
        ) as response:
            assert (await response.json())["errcode"] == 0
        card = self.dingtalk.cards[-1]["actionCard"]
        tokens = {}
        for button in card["btns"]:
            parts = urlsplit(button["actionURL"])
            assert parts.path == "/console/a" and parts.fragment.startswith("t=")
            tokens[{"确认": "acknowledge", "开始处理": "start"}[button["title"]]] = (
                parts.fragment[2:]
            )
        return tokens


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return load_rules(path)


@pytest.fixture
async def env(noida: EmbeddedServers, rules: RuleSet) -> AsyncIterator[Env]:
    assert noida.addresses is not None
    prefix = "al" + uuid.uuid4().hex[:10]
    store = TicketStore.connect(noida.addresses.es_url, prefix)
    service = TicketService(store, lambda: rules, now=lambda: T0 + timedelta(hours=1))
    clock = Clock()
    ledger = LinkLedger(store.client, prefix)

    root = web.Application()
    dingtalk = DingTalk()
    root.router.add_post("/robot/send", dingtalk.send)
    port = free_port()
    console = f"http://127.0.0.1:{port}"
    issuer = ActionLinkIssuer(
        ActionLinkKeys.parse(KEY_SPEC), console, timedelta(hours=1), clock
    )
    root.add_subapp(
        "/api/links", action_links_app(service, ActionLinks(issuer, ledger))
    )
    runner = web.AppRunner(root)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    dingtalk.url = console
    async with aiohttp.ClientSession() as session:
        yield Env(
            service, issuer, ledger, clock, f"{console}/api/links", session, dingtalk
        )
    await runner.cleanup()
    await store.close()


async def new_ticket(env: Env, minutes: float = 0) -> str:
    decision = await env.service.handle_trigger(trigger(minutes))
    assert decision.ticket is not None
    return decision.ticket.ticket_id


def refused(body: Any, status: int, code: str) -> str:
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == status and body["error"]["code"] == code, body
    return str(body["error"]["message"])


async def test_a_dingtalk_card_button_acknowledges_the_ticket_once(env: Env) -> None:
    ticket_id = await new_ticket(env)
    tokens = await env.notify(ticket_id)
    assert set(tokens) == {"acknowledge", "start"}

    status, body = await env.inspect(tokens["acknowledge"])
    assert status == 200 and body["usable"] is True, body
    assert body["ticket"]["ticket_id"] == ticket_id
    assert body["ticket"]["status"] == "open"
    assert (body["action"], body["actor"], body["channel"]) == (
        "acknowledge",
        "王工",
        "ops-dingtalk",
    )
    assert datetime.fromisoformat(body["expires_at"]) == env.clock.now.replace(
        microsecond=0
    ) + timedelta(hours=1)

    status, body = await env.redeem(tokens["acknowledge"])
    assert status == 200, body
    assert body["ticket"]["status"] == "acknowledged"
    assert body["event"]["action"] == "acknowledge"
    assert body["event"]["actor"] == "王工"
    assert body["event"]["note"] == "via link issued to 王工 in ops-dingtalk"

    ticket, events = await env.service.get(ticket_id)
    assert ticket.status == "acknowledged"
    assert events[-1].note == "via link issued to 王工 in ops-dingtalk"
    link_id = env.issuer.verify(tokens["acknowledge"]).link_id
    claim = await env.ledger.get(link_id)
    assert claim is not None
    assert claim["outcome"] == "applied" and claim["event_id"] == events[-1].event_id

    # A second tap: refused, showing who acknowledged it and when.
    status, body = await env.redeem(tokens["acknowledge"])
    message = refused(body, 409, "used")
    assert status == 409
    acknowledged_at = events[-1].at.isoformat(timespec="seconds")
    assert f"already acknowledged by 王工 at {acknowledged_at}" in message
    assert body["error"]["state"]["status"] == "acknowledged"
    assert body["error"]["state"]["changed_by"] == "王工"
    status, body = await env.inspect(tokens["acknowledge"])
    assert status == 200 and body["usable"] is False and body["code"] == "used"

    # The card's other button was issued for the ticket as it was: stale now.
    status, body = await env.redeem(tokens["start"])
    assert status == 409
    assert "changed since this link was issued" in refused(body, 409, "stale")
    assert (await env.service.get(ticket_id))[0].status == "acknowledged"


async def test_start_from_a_fresh_card_after_acknowledging(env: Env) -> None:
    ticket_id = await new_ticket(env)
    await env.service.act(ticket_id, "acknowledge", "李工")
    tokens = await env.notify(ticket_id, actor="李工")
    assert set(tokens) == {"start"}  # acknowledge is no longer offered
    status, body = await env.redeem(tokens["start"])
    assert status == 200 and body["ticket"]["status"] == "in_progress"
    assert body["event"]["actor"] == "李工"


async def test_tampered_expired_and_foreign_links_are_refused(env: Env) -> None:
    ticket_id = await new_ticket(env)
    token = (await env.notify(ticket_id))["acknowledge"]
    version, key_id, claims, sig = token.split(".")

    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    status, body = await env.redeem(f"{version}.{key_id}.{claims}.{flipped}")
    assert status == 403 and refused(body, 403, "forged")
    other_claims = claims[:5] + ("x" if claims[5] != "x" else "y") + claims[6:]
    status, body = await env.redeem(f"{version}.{key_id}.{other_claims}.{sig}")
    assert status in (400, 403) and body["error"]["code"] in ("forged", "malformed")
    status, body = await env.redeem(f"{version}.k9.{claims}.{sig}")
    assert status == 403 and refused(body, 403, "unknown_key")
    for garbage in ("", "v1.k1", "hello"):
        status, body = await env.redeem(garbage)
        assert status == 400 and refused(body, 400, "malformed")
    status, body, _ = await env.call("/redeem", {"tok": token})
    assert status == 400
    status, body, _ = await env.call("/redeem", raw=b"not json")
    assert status == 400

    env.clock.now += timedelta(hours=1, seconds=1)
    status, body = await env.redeem(token)
    assert status == 403 and "expired" in refused(body, 403, "expired")
    status, body = await env.inspect(token)
    assert status == 200 and body["usable"] is False and body["code"] == "expired"

    # None of that touched the ticket or used the link up.
    ticket, _ = await env.service.get(ticket_id)
    assert ticket.status == "open"
    assert (
        await env.ledger.get(
            env.issuer.verify(token, env.clock.now - timedelta(hours=1)).link_id
        )
        is None
    )


async def test_a_ticket_changed_since_issuing_refuses_the_link(env: Env) -> None:
    ticket_id = await new_ticket(env)
    token = (await env.notify(ticket_id))["acknowledge"]
    await env.service.act(ticket_id, "comment", "李工", note="我看一下")

    status, body = await env.inspect(token)
    assert status == 200 and body["usable"] is False and body["code"] == "stale"
    status, body = await env.redeem(token)
    assert status == 409
    assert "has changed since this link was issued" in refused(body, 409, "stale")
    assert (await env.service.get(ticket_id))[0].status == "open"


async def test_delivery_records_do_not_make_a_link_stale(env: Env) -> None:
    ticket_id = await new_ticket(env)
    token = (await env.notify(ticket_id))["acknowledge"]
    # The notice's own delivery is recorded on the ticket after it is sent.
    found = await env.service.store.get(ticket_id)
    assert found is not None
    ticket, version = found
    delivered, event = record_delivery(ticket, "ops-dingtalk", "sent", T0)
    await env.service.store.save(delivered, [event], version)

    status, body = await env.redeem(token)
    assert status == 200, body
    assert body["ticket"]["status"] == "acknowledged"


async def test_two_taps_at_once_apply_the_action_exactly_once(env: Env) -> None:
    ticket_id = await new_ticket(env)
    token = (await env.notify(ticket_id))["acknowledge"]

    results = await asyncio.gather(*(env.redeem(token) for _ in range(4)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409, 409, 409], results
    _, events = await env.service.get(ticket_id)
    assert [e.action for e in events].count("acknowledge") == 1


async def test_get_changes_nothing_and_big_bodies_are_refused(env: Env) -> None:
    ticket_id = await new_ticket(env)
    token = (await env.notify(ticket_id))["acknowledge"]

    for path in ("/redeem", "/inspect"):
        status, body, headers = await env.call(path, method="GET")
        assert status == 405 and body["error"]["status"] == 405
        assert "POST" in headers.get("Allow", "")
    status, body, _ = await env.call(
        "/redeem",
        raw=b'{"token": "' + token.encode() + b'", "pad": "' + b"x" * 9000 + b'"}',
    )
    assert status == 413 and body["error"]["status"] == 413
    assert (await env.service.get(ticket_id))[0].status == "open"
    # Nothing needs a bearer token: the link is the credential.
    status, body = await env.redeem(token)
    assert status == 200
