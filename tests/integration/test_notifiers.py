"""Notifications against real local receivers: an aiohttp server standing in
for the webhook receiver, DingTalk, Feishu, WeCom and Slack (verifying
signatures the way each vendor does), and a real aiosmtpd SMTP server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from monitor.config.rules import Channel
from monitor.local.embedded import free_port
from monitor.sinks.notifiers import Delivery, Notifier
from tests.unit.test_notifiers import EVENT, make_ticket

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec-测试"
DINGTALK_TOKEN = "ding-token"
DINGTALK_SECRET = "SEC0123456789abcdef"
FEISHU_SECRET = "feishu-secret"
WECOM_KEY = "wecom-key"
ALL_CHANNELS = ["ops-webhook", "dingtalk", "feishu", "wecom", "slack", "email"]


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receivers:
    """A real HTTP server with one route per vendor.

    ``scripted[path]`` holds replies ``(status, body, headers)`` given before
    the route's own handling, to inject failures into a real exchange.
    """

    base_url: str = ""
    requests: dict[str, list[Received]] = field(
        default_factory=lambda: defaultdict(list)
    )
    scripted: dict[str, list[tuple[int, str, dict[str, str]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests[request.path].append(
            Received(request.path, dict(request.query), dict(request.headers), body)
        )
        if self.scripted[request.path]:
            status, text, headers = self.scripted[request.path].pop(0)
            return web.Response(status=status, text=text, headers=headers)
        response: web.StreamResponse = await handler(request)
        return response

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Monitor-Timestamp", "")
        expected = (
            "sha256="
            + hmac.new(
                WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
            ).hexdigest()
        )
        signature = request.headers.get("X-Monitor-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return web.Response(status=401, text="stale or missing timestamp")
        if not hmac.compare_digest(signature, expected):
            return web.Response(status=401, text="bad signature")
        return web.Response(status=204)

    async def down(self, request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    async def slow(self, request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(self.release.wait(), timeout=5)
        except TimeoutError:
            pass
        return web.Response(status=204)

    async def dingtalk(self, request: web.Request) -> web.Response:
        # As DingTalk: token, then timestamp within an hour, then the sign.
        if request.query.get("access_token") != DINGTALK_TOKEN:
            return web.json_response({"errcode": 300001, "errmsg": "token not exist"})
        timestamp = request.query.get("timestamp", "")
        string_to_sign = f"{timestamp}\n{DINGTALK_SECRET}".encode()
        expected = base64.b64encode(
            hmac.new(DINGTALK_SECRET.encode(), string_to_sign, hashlib.sha256).digest()
        ).decode()
        fresh = timestamp.isdigit() and abs(time.time() * 1000 - int(timestamp)) < 3.6e6
        if not fresh or request.query.get("sign") != expected:
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        payload = await request.json()
        if payload.get("msgtype") != "markdown" or not payload["markdown"]["text"]:
            return web.json_response({"errcode": 40035, "errmsg": "bad message"})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def feishu(self, request: web.Request) -> web.Response:
        payload = await request.json()
        timestamp = str(payload.get("timestamp", ""))
        key = f"{timestamp}\n{FEISHU_SECRET}".encode()
        expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest())
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 3600
        if not fresh or payload.get("sign") != expected.decode():
            return web.json_response(
                {"code": 19021, "data": {}, "msg": "sign match fail"}
            )
        if payload.get("msg_type") != "post":
            return web.json_response({"code": 9499, "data": {}, "msg": "Bad Request"})
        return web.json_response({"code": 0, "data": {}, "msg": "success"})

    async def wecom(self, request: web.Request) -> web.Response:
        if request.query.get("key") != WECOM_KEY:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook"})
        payload = await request.json()
        content = payload.get("markdown", {}).get("content", "")
        if payload.get("msgtype") != "markdown" or len(content.encode()) > 4096:
            return web.json_response({"errcode": 40058, "errmsg": "invalid content"})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def slack(self, request: web.Request) -> web.Response:
        payload = await request.json()
        if not payload.get("text") or not payload.get("blocks"):
            return web.Response(status=400, text="invalid_payload")
        return web.Response(text="ok")


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    box = Receivers()
    app = web.Application(middlewares=[box.record])
    app.add_routes(
        [
            web.post("/hooks/ops", box.webhook),
            web.post("/hooks/down", box.down),
            web.post("/hooks/slow", box.slow),
            web.post("/robot/send", box.dingtalk),
            web.post("/open-apis/bot/v2/hook/{token}", box.feishu),
            web.post("/cgi-bin/webhook/send", box.wecom),
            web.post("/services/{team}/{bot}/{key}", box.slack),
        ]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    box.base_url = f"http://127.0.0.1:{port}"
    yield box
    box.release.set()
    await runner.cleanup()


class Inbox:
    """aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()  # raises with the reason if the server cannot start
    yield controller, inbox
    controller.stop()


def channels(smtp_port: int) -> dict[str, Channel]:
    """All six kinds, secrets and URLs as ``${NAME}`` references."""
    listed = [
        Channel(
            "ops-webhook",
            "webhook",
            {
                "url": "${ALERT_HOOK_BASE}/hooks/ops",
                "secret": "${ALERT_WEBHOOK_SECRET}",
            },
        ),
        Channel("down", "webhook", {"url": "${ALERT_HOOK_BASE}/hooks/down"}),
        Channel("slow", "webhook", {"url": "${ALERT_HOOK_BASE}/hooks/slow"}),
        Channel("unreachable", "webhook", {"url": f"http://127.0.0.1:{free_port()}/x"}),
        Channel(
            "dingtalk",
            "dingtalk",
            {
                "webhook": "${ALERT_HOOK_BASE}/robot/send?access_token="
                + DINGTALK_TOKEN,
                "secret": "${ALERT_DINGTALK_SECRET}",
                "at_mobiles": ["13800000001"],
            },
        ),
        Channel(
            "dingtalk-wrong-secret",
            "dingtalk",
            {
                "webhook": "${ALERT_HOOK_BASE}/robot/send?access_token="
                + DINGTALK_TOKEN,
                "secret": "SECnot-the-robots",
            },
        ),
        Channel(
            "feishu",
            "feishu",
            {
                "webhook": "${ALERT_HOOK_BASE}/open-apis/bot/v2/hook/abc",
                "secret": "${ALERT_FEISHU_SECRET}",
            },
        ),
        Channel(
            "wecom",
            "wecom",
            {
                "webhook": "${ALERT_HOOK_BASE}/cgi-bin/webhook/send?key=" + WECOM_KEY,
                "mentioned_list": ["wanggong"],
            },
        ),
        Channel("slack", "slack", {"webhook": "${ALERT_HOOK_BASE}/services/T0/B0/xyz"}),
        Channel(
            "email",
            "email",
            {
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "starttls": False,
                "from": "monitor@example.com",
                "to": ["duty.ops@example.com", "wang.gong@example.com"],
            },
        ),
    ]
    return {channel.name: channel for channel in listed}


@pytest.fixture
def make_notifier(
    receivers: Receivers, smtp: tuple[Controller, Inbox]
) -> Iterator[Any]:
    env = {
        "ALERT_HOOK_BASE": receivers.base_url,
        "ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ALERT_DINGTALK_SECRET": DINGTALK_SECRET,
        "ALERT_FEISHU_SECRET": FEISHU_SECRET,
    }
    controller, _ = smtp

    def build(**options: Any) -> Notifier:
        options = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0, **options}
        return Notifier(
            channels(controller.port),
            env,
            console_url="https://ops.example",
            **options,
        )

    yield build


def by_channel(deliveries: list[Delivery]) -> dict[str, Delivery]:
    return {delivery.channel: delivery for delivery in deliveries}


async def test_every_channel_delivers_a_payload_its_receiver_verifies(
    make_notifier: Any, receivers: Receivers, smtp: tuple[Controller, Inbox]
) -> None:
    async with make_notifier() as notifier:
        deliveries = await notifier.notify(make_ticket(), "opened", ALL_CHANNELS)

    assert [(d.channel, d.status, d.attempts, d.error) for d in deliveries] == [
        (name, "sent", 1, "") for name in ALL_CHANNELS
    ]
    (webhook,) = receivers.requests["/hooks/ops"]
    assert webhook.headers["X-Monitor-Signature"].startswith("sha256=")
    assert webhook.headers["X-Monitor-Delivery"]
    assert webhook.json()["kind"] == "opened"
    assert webhook.json()["ticket"]["ticket_id"] == "T-3f2a9c01de-1"
    assert webhook.json()["event"] is None
    (ding,) = receivers.requests["/robot/send"]
    assert {"timestamp", "sign"} <= set(ding.query)
    assert ding.json()["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}
    assert (
        "https://ops.example/console/tickets/T-3f2a9c01de-1"
        in (ding.json()["markdown"]["text"])
    )
    (feishu,) = receivers.requests["/open-apis/bot/v2/hook/abc"]
    assert feishu.json()["sign"] and feishu.json()["msg_type"] == "post"
    (wecom,) = receivers.requests["/cgi-bin/webhook/send"]
    assert "空调异味" in wecom.json()["markdown"]["content"]
    (slack,) = receivers.requests["/services/T0/B0/xyz"]
    assert slack.json()["text"].startswith("[P2] 新工单 T-3f2a9c01de-1")
    _, inbox = smtp
    ((recipients, email),) = inbox.messages
    assert recipients == ["duty.ops@example.com", "wang.gong@example.com"]
    assert email["Subject"] == "[P2] 新工单 T-3f2a9c01de-1 空调异味 负面声量"


async def test_email_has_text_and_html_parts_and_the_title_as_subject(
    make_notifier: Any, smtp: tuple[Controller, Inbox]
) -> None:
    ticket = make_ticket(status="resolved", priority="P1")

    async with make_notifier() as notifier:
        (delivery,) = await notifier.notify(ticket, "resolved", ["email"], EVENT)

    assert delivery.status == "sent"
    _, inbox = smtp
    ((_, email),) = inbox.messages
    assert email["Subject"] == "[P1] 已解决 T-3f2a9c01de-1 空调异味 负面声量"
    assert email["From"] == "monitor@example.com"
    assert email.get_content_type() == "multipart/alternative"
    text, html = email.get_body(("plain",)), email.get_body(("html",))
    assert text is not None and html is not None
    assert "操作：张经理 escalate：确认超时，升级" in text.get_content()  # type: ignore[attr-defined]
    assert "<a href='https://weibo.example/p1'>原帖</a>" in html.get_content()  # type: ignore[attr-defined]


async def test_a_receiver_failing_twice_gets_it_on_the_third_attempt(
    make_notifier: Any, receivers: Receivers
) -> None:
    receivers.scripted["/hooks/ops"] = [(500, "boom", {}), (500, "boom", {})]

    async with make_notifier(retries=3) as notifier:
        (delivery,) = await notifier.notify(make_ticket(), "opened", ["ops-webhook"])

    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 3, "")
    attempts = receivers.requests["/hooks/ops"]
    assert len({request.headers["X-Monitor-Delivery"] for request in attempts}) == 1
    for request in attempts:  # each attempt is signed, not only the last
        signed = f"{request.headers['X-Monitor-Timestamp']}.".encode() + request.body
        expected = hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256)
        assert (
            request.headers["X-Monitor-Signature"] == f"sha256={expected.hexdigest()}"
        )


async def test_a_failing_channel_does_not_hold_back_the_others(
    make_notifier: Any, receivers: Receivers
) -> None:
    names = ["down", *ALL_CHANNELS]

    async with make_notifier(retries=2, backoff=0.25, max_backoff=1.0) as notifier:
        started = time.perf_counter()
        deliveries = by_channel(await notifier.notify(make_ticket(), "opened", names))
        elapsed = time.perf_counter() - started

    down = deliveries.pop("down")
    assert (down.status, down.attempts) == ("failed", 3)
    assert down.error == "HTTP 503: maintenance"
    assert down.latency_seconds >= 0.25 + 0.5
    assert len(receivers.requests["/hooks/down"]) == 3
    assert {d.status for d in deliveries.values()} == {"sent"}
    assert max(d.latency_seconds for d in deliveries.values()) < 0.5
    assert elapsed < down.latency_seconds + 0.5  # concurrent, not one after another


async def test_dingtalk_refusing_the_signature_counts_as_failed(
    make_notifier: Any, receivers: Receivers
) -> None:
    async with make_notifier(retries=3) as notifier:
        deliveries = await notifier.notify(
            make_ticket(), "opened", ["dingtalk-wrong-secret", "dingtalk"]
        )

    wrong, right = deliveries
    assert (wrong.status, wrong.attempts) == ("failed", 1)  # not retried
    assert wrong.error == "dingtalk error 310000: sign not match"
    assert right.status == "sent"


async def test_a_robot_saying_too_fast_is_retried(
    make_notifier: Any, receivers: Receivers
) -> None:
    too_fast = json.dumps({"errcode": 130101, "errmsg": "send too fast"})
    receivers.scripted["/robot/send"] = [(200, too_fast, {})]
    busy = json.dumps({"code": 11232, "msg": "frequency limited"})
    receivers.scripted["/open-apis/bot/v2/hook/abc"] = [(200, busy, {})]

    async with make_notifier() as notifier:
        deliveries = await notifier.notify(
            make_ticket(), "escalated", ["dingtalk", "feishu"]
        )

    assert [(d.status, d.attempts) for d in deliveries] == [("sent", 2), ("sent", 2)]


async def test_retry_after_is_honoured_within_the_cap(
    make_notifier: Any, receivers: Receivers
) -> None:
    receivers.scripted["/services/T0/B0/xyz"] = [
        (429, "rate_limited", {"Retry-After": "0.3"})
    ]

    async with make_notifier(backoff=0.01, max_backoff=1.0) as notifier:
        (delivery,) = await notifier.notify(make_ticket(), "opened", ["slack"])

    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert delivery.latency_seconds >= 0.3


async def test_the_third_notification_in_a_minute_is_rate_limited(
    make_notifier: Any, receivers: Receivers
) -> None:
    async with make_notifier(rate_per_minute=2) as notifier:
        results = [
            await notifier.notify(make_ticket(), "opened", ["wecom", "slack"])
            for _ in range(3)
        ]

    assert [[d.status for d in result] for result in results] == [
        ["sent", "sent"],
        ["sent", "sent"],
        ["rate_limited", "rate_limited"],
    ]
    assert results[2][0].attempts == 0
    assert len(receivers.requests["/cgi-bin/webhook/send"]) == 2


async def test_an_unreachable_receiver_fails_after_every_retry(
    make_notifier: Any,
) -> None:
    async with make_notifier(retries=2) as notifier:
        (delivery,) = await notifier.notify(make_ticket(), "opened", ["unreachable"])

    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "ClientConnectorError" in delivery.error


async def test_a_receiver_that_does_not_answer_times_out(
    make_notifier: Any, receivers: Receivers
) -> None:
    async with make_notifier(timeout=0.2, retries=1) as notifier:
        (delivery,) = await notifier.notify(make_ticket(), "opened", ["slow"])

    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.error == "timed out after 0.2 s"
    assert len(receivers.requests["/hooks/slow"]) == 2


async def test_unknown_channels_are_skipped_and_repeats_sent_once(
    make_notifier: Any, receivers: Receivers
) -> None:
    async with make_notifier() as notifier:
        deliveries = await notifier.notify(
            make_ticket(), "opened", ["nope", "wecom", "wecom"]
        )

    assert [(d.channel, d.status, d.attempts) for d in deliveries] == [
        ("nope", "skipped", 0),
        ("wecom", "sent", 1),
    ]
    assert deliveries[0].error == "no channel named 'nope'"
    assert len(receivers.requests["/cgi-bin/webhook/send"]) == 1


async def test_notify_needs_start(make_notifier: Any) -> None:
    notifier = make_notifier()

    with pytest.raises(RuntimeError, match="start"):
        await notifier.notify(make_ticket(), "opened", ["wecom"])
