"""SMS notices against real local receivers that check what the vendors check.

:class:`SmsVendors` is a real aiohttp server with two routes:

- ``POST /``: Alibaba Cloud ``SendSms`` (API 2017-05-25). It re-implements the
  RPC signature check from the documentation ("签名机制", help.aliyun.com
  document 101343), independently of :mod:`monitor.sinks.notifiers.sms`:
  percent-encoding byte by byte (RFC 3986: ``A-Z a-z 0-9 - _ . ~`` kept, the
  rest ``%XY``), parameters sorted by name, ``StringToSign = POST&%2F&
  encode(canonicalized query)``, ``base64(HMAC-SHA1(secret + "&"))``. Like
  the service it checks the access key, the timestamp's age, the nonce's
  reuse and the signature first (HTTP 4xx with an error ``Code``), then the
  SendSms parameters (HTTP 200 with an ``isv.*`` code), and answers
  ``{"Code": "OK", ...}``.
- ``POST /sms/send?token=...``: a generic gateway checking the ``http_sms``
  channel's HMAC-SHA256 header over ``f"{timestamp}.{body}"``.

Notices are sent the way the worker sends them: :meth:`Notifier.send` with a
stable delivery id, and through the :class:`NoticeSender` over a ticket's
outbox on the local noida-db (Elasticsearch protocol) server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web

from monitor.config.rules import RuleSet, load_rules
from monitor.local.embedded import EmbeddedServers, free_port
from monitor.services.notices import NoticeSender
from monitor.services.ticketing import TicketService
from monitor.sinks.elasticsearch.tickets import TicketStore
from monitor.sinks.notifiers import Notifier
from tests.integration.test_tickets_api import T0, trigger
from tests.unit.test_notifiers import make_ticket
from tests.unit.test_sms import DOC_PARAMS, DOC_SIGNATURE

pytestmark = pytest.mark.integration

ACCESS_KEY_ID = "LTAI5tLocalSmsKey01"
ACCESS_KEY_SECRET = "aliyun-secret-Qx7pW2"
WRONG_SECRET = "aliyun-secret-not-it"
SIGN_NAME = "星河商场"
TEMPLATE_CODE = "SMS_467890123"
#: The template's variables (its text: 舆情告警：${content}，工单 ${ticket_no}).
TEMPLATE_VARIABLES = frozenset({"content", "ticket_no"})
GATEWAY_SECRET = "gw-secret-测试"
GATEWAY_TOKEN = "gw-url-token-9f3c"
MOBILE_A = "13800138001"
MOBILE_B = "+8613800138002"
CONSOLE = "https://ops.example"
LINK = f"{CONSOLE}/console/tickets/T-3f2a9c01de-1"
SECRETS = (ACCESS_KEY_SECRET, WRONG_SECRET, GATEWAY_SECRET, GATEWAY_TOKEN)

RULES = """\
topics:
  空调异味:
    keywords: [空调]
    rules:
      - {name: 负面声量, kind: negative_volume, threshold: 6,
         channels: [ops-sms, ops-sms-wrong, gateway-sms]}
owners:
  王工: {mobile: "13800138001"}
teams:
  facilities: {members: [王工]}
channels:
  ops-sms:
    kind: aliyun_sms
    access_key_id: ${ALERT_SMS_KEY_ID}
    access_key_secret: ${ALERT_SMS_KEY_SECRET}
    endpoint: ${ALERT_SMS_ENDPOINT}
    sign_name: 星河商场
    template_code: SMS_467890123
    template_params: {content: text, ticket_no: ticket}
    to: ["13800138001", "+8613800138002"]
    per_recipient_per_hour: 2
  ops-sms-wrong:
    kind: aliyun_sms
    access_key_id: ${ALERT_SMS_KEY_ID}
    access_key_secret: ${ALERT_SMS_WRONG_SECRET}
    endpoint: ${ALERT_SMS_ENDPOINT}
    sign_name: 星河商场
    template_code: SMS_467890123
    template_params: {content: text, ticket_no: ticket}
    to: ["13800138001"]
  gateway-sms:
    kind: http_sms
    url: ${ALERT_SMS_GATEWAY_URL}
    secret: ${ALERT_SMS_GATEWAY_SECRET}
    body: {phone: "{mobile}", message: "{text}", ref: "{delivery_id}",
           ticket: "{ticket}", level: "{priority}"}
    to: ["13800138001"]
    max_chars: 70
  gateway-sms-wrong:
    kind: http_sms
    url: ${ALERT_SMS_GATEWAY_URL}
    secret: ${ALERT_SMS_GATEWAY_WRONG_SECRET}
    to: ["13800138001"]
  gateway-down:
    kind: http_sms
    url: ${ALERT_SMS_GATEWAY_DOWN_URL}
    secret: ${ALERT_SMS_GATEWAY_SECRET}
    to: ["13800138001"]
personal: {sms: ops-sms, on: [assigned]}
routing: {default_team: facilities}
"""


# --- Alibaba Cloud's side of the signature, from the document -------------------


def rfc3986(text: str) -> str:
    """Percent-encode UTF-8 bytes as the signature document says."""
    kept = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    return "".join(
        chr(byte) if byte in kept else f"%{byte:02X}" for byte in text.encode()
    )


def server_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(
        f"{rfc3986(name)}={rfc3986(params[name])}" for name in sorted(params)
    )
    return f"{method}&{rfc3986('/')}&{rfc3986(canonical)}"


def server_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    key = (secret + "&").encode()
    signed = server_string_to_sign(method, params).encode()
    return base64.b64encode(hmac.new(key, signed, hashlib.sha1).digest()).decode()


#: Parameters every RPC call must carry, and SendSms's own.
COMMON = (
    "AccessKeyId",
    "Action",
    "Format",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
    "Signature",
)
SEND_SMS = ("PhoneNumbers", "SignName", "TemplateCode")
CHINA_MOBILE = r"(?:\+|\+86|0086|86)?1[0-9]{10}"


@dataclass
class GatewayMessage:
    delivery_id: str
    body: dict[str, Any]


@dataclass
class SmsVendors:
    """Alibaba Cloud SMS and an SMS gateway, as far as a sender can tell."""

    base_url: str = ""
    keys: dict[str, str] = field(
        default_factory=lambda: {ACCESS_KEY_ID: ACCESS_KEY_SECRET}
    )
    #: Accepted SendSms calls (parameters, signature left out).
    sent: list[dict[str, str]] = field(default_factory=list)
    #: Refused calls: (Code, parameters).
    refused: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    #: Codes to answer (HTTP 200) to the next signed, valid calls.
    busy: list[str] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    gateway: list[GatewayMessage] = field(default_factory=list)
    gateway_refused: list[str] = field(default_factory=list)

    def _error(
        self, status: int, code: str, message: str, params: dict[str, str]
    ) -> web.Response:
        self.refused.append((code, params))
        return web.json_response(
            {
                "RequestId": str(uuid.uuid4()).upper(),
                "HostId": "dysmsapi.aliyuncs.com",
                "Code": code,
                "Message": message,
            },
            status=status,
        )

    async def aliyun(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return self._error(400, "InvalidParameter", "not a form", {})
        pairs = parse_qsl((await request.read()).decode(), keep_blank_values=True)
        params = dict(pairs)
        if len(params) != len(pairs):
            return self._error(400, "InvalidParameter", "a repeated name", params)
        for name in COMMON:
            if not params.get(name):
                message = f'The input parameter "{name}" is mandatory.'
                return self._error(400, "MissingParameter", message, params)
        secret = self.keys.get(params["AccessKeyId"])
        if secret is None:
            message = "Specified access key is not found."
            return self._error(404, "InvalidAccessKeyId.NotFound", message, params)
        if (params["SignatureMethod"], params["SignatureVersion"]) != (
            "HMAC-SHA1",
            "1.0",
        ):
            return self._error(400, "InvalidSignatureMethod", "HMAC-SHA1", params)
        try:
            stamp = datetime.strptime(
                params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ"
            ).replace(tzinfo=timezone.utc)
        except ValueError:
            return self._error(400, "InvalidTimeStamp.Format", "bad", params)
        age = abs(time.time() - stamp.timestamp())
        if age > 900:
            return self._error(400, "InvalidTimeStamp.Expired", "expired", params)
        if params["SignatureNonce"] in self.nonces:
            message = "Specified signature nonce was used already."
            return self._error(400, "SignatureNonceUsed", message, params)
        given = params.pop("Signature")
        if not hmac.compare_digest(given, server_signature(secret, "POST", params)):
            # As the service answers: the string it signed, never the key.
            message = (
                "Specified signature is not matched with our calculation. "
                "server string to sign is:" + server_string_to_sign("POST", params)
            )
            return self._error(400, "SignatureDoesNotMatch", message, params)
        self.nonces.add(params["SignatureNonce"])
        if (params["Action"], params["Version"]) != ("SendSms", "2017-05-25"):
            return self._error(404, "InvalidAction.NotFound", "unknown", params)
        if any(not params.get(name) for name in SEND_SMS):
            return self._error(400, "MissingParameter", "SendSms", params)
        return self._send_sms(params)

    def _send_sms(self, params: dict[str, str]) -> web.Response:
        def answer(code: str, message: str) -> web.Response:
            if code != "OK":
                self.refused.append((code, params))
            else:
                self.sent.append(params)
            return web.json_response(
                {
                    "Code": code,
                    "Message": message,
                    "BizId": f"{len(self.sent)}^0",
                    "RequestId": str(uuid.uuid4()).upper(),
                }
            )

        if params["SignName"] != SIGN_NAME:
            return answer("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if params["TemplateCode"] != TEMPLATE_CODE:
            return answer("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        mobiles = params["PhoneNumbers"].split(",")
        if not all(re.fullmatch(CHINA_MOBILE, mobile) for mobile in mobiles):
            return answer("isv.MOBILE_NUMBER_ILLEGAL", "手机号码格式错误")
        try:
            variables = json.loads(params.get("TemplateParam", "{}"))
        except ValueError:
            return answer("isv.INVALID_JSON_PARAM", "JSON参数不合法")
        if not isinstance(variables, dict) or set(variables) != TEMPLATE_VARIABLES:
            return answer("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
        if self.busy:
            return answer(self.busy.pop(0), "触发流控")
        return answer("OK", "OK")

    async def gateway_send(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if request.query.get("token") != GATEWAY_TOKEN:
            self.gateway_refused.append("token")
            return web.json_response({"error": "unknown token"}, status=403)
        stamp = request.headers.get("X-Monitor-Timestamp", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            self.gateway_refused.append("timestamp")
            return web.json_response({"error": "stale timestamp"}, status=401)
        expected = hmac.new(
            GATEWAY_SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256
        ).hexdigest()
        signature = request.headers.get("X-Monitor-Signature", "")
        if not hmac.compare_digest(signature, f"sha256={expected}"):
            self.gateway_refused.append("signature")
            return web.json_response({"error": "bad signature"}, status=401)
        delivery = request.headers.get("X-Monitor-Delivery", "")
        body = json.loads(raw)
        if not delivery or not isinstance(body, dict):
            self.gateway_refused.append("body")
            return web.json_response({"error": "bad request"}, status=400)
        self.gateway.append(GatewayMessage(delivery, body))
        return web.json_response({"status": "queued", "id": len(self.gateway)})

    def env(self) -> dict[str, str]:
        """The ``ALERT_*`` variables :data:`RULES` refers to, pointing here."""
        return {
            "ALERT_SMS_KEY_ID": ACCESS_KEY_ID,
            "ALERT_SMS_KEY_SECRET": ACCESS_KEY_SECRET,
            "ALERT_SMS_WRONG_SECRET": WRONG_SECRET,
            "ALERT_SMS_ENDPOINT": f"{self.base_url}/",
            "ALERT_SMS_GATEWAY_URL": f"{self.base_url}/sms/send?token={GATEWAY_TOKEN}",
            "ALERT_SMS_GATEWAY_SECRET": GATEWAY_SECRET,
            "ALERT_SMS_GATEWAY_WRONG_SECRET": "gw-secret-stale",
            "ALERT_SMS_GATEWAY_DOWN_URL": (
                f"http://127.0.0.1:{free_port()}/sms/send?token={GATEWAY_TOKEN}"
            ),
        }


@asynccontextmanager
async def running_vendors() -> AsyncIterator[SmsVendors]:
    """Serve :class:`SmsVendors` on a free loopback port in this event loop."""
    box = SmsVendors()
    app = web.Application()
    app.router.add_post("/", box.aliyun)
    app.router.add_post("/sms/send", box.gateway_send)
    runner = web.AppRunner(app, access_log=None)  # its log would show the token
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    box.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield box
    finally:
        await runner.cleanup()


@pytest.fixture
async def vendors() -> AsyncIterator[SmsVendors]:
    async with running_vendors() as box:
        yield box


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return load_rules(path)


@dataclass
class Clock:
    seconds: float = 1000.0

    def __call__(self) -> float:
        return self.seconds


def notifier_for(rules: RuleSet, vendors: SmsVendors, **options: Any) -> Notifier:
    """The notifier as the worker builds it (the sender hands in the owners)."""
    options = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0, **options}
    notifier = Notifier(rules.channels, vendors.env(), console_url=CONSOLE, **options)
    notifier.use_directory(rules.owners, rules.personal)
    return notifier


def template_param(params: Mapping[str, str]) -> dict[str, str]:
    value = json.loads(params["TemplateParam"])
    assert isinstance(value, dict)
    return value


# --- the tests ----------------------------------------------------------------------


def test_the_receivers_check_reproduces_the_documents_example() -> None:
    assert server_signature("testSecret", "GET", DOC_PARAMS) == DOC_SIGNATURE
    assert rfc3986("a b*~+/阿") == "a%20b%2A~%2B%2F%E9%98%BF"


async def test_an_aliyun_notice_arrives_signed_with_its_template(
    rules: RuleSet, vendors: SmsVendors
) -> None:
    ticket = make_ticket(priority="P1")
    async with notifier_for(rules, vendors) as notifier:
        delivery = await notifier.send(
            "ops-sms", ticket, "opened", delivery_id="T-3f2a9c01de-1#n1@ops-sms"
        )

    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 1, "")
    assert vendors.refused == []
    assert [p["PhoneNumbers"] for p in vendors.sent] == [MOBILE_A, MOBILE_B]
    text = f"[P1] 新工单 T-3f2a9c01de-1 空调异味 负面声量 负责人:王工 {LINK}"
    for params in vendors.sent:
        assert params["TemplateCode"] == TEMPLATE_CODE
        assert params["SignName"] == SIGN_NAME
        assert template_param(params) == {
            "content": text,
            "ticket_no": "T-3f2a9c01de-1",
        }
        assert params["OutId"] == "T-3f2a9c01de-1#n1@ops-sms"
        assert params["AccessKeyId"] == ACCESS_KEY_ID
        assert params["Format"] == "JSON" and params["RegionId"] == "cn-hangzhou"
    assert len({p["SignatureNonce"] for p in vendors.sent}) == 2, "a nonce per call"


async def test_the_gateway_gets_its_templated_body_signed(
    rules: RuleSet, vendors: SmsVendors
) -> None:
    async with notifier_for(rules, vendors) as notifier:
        delivery = await notifier.send(
            "gateway-sms", make_ticket(), "escalated", delivery_id="T-1#n4@gw"
        )

    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert vendors.gateway_refused == []
    (message,) = vendors.gateway
    assert message.delivery_id == "T-1#n4@gw"
    assert message.body == {
        "phone": MOBILE_A,
        # max_chars 70: one segment; the 50-character link does not fit.
        "message": "[P2] 升级 T-3f2a9c01de-1 空调异味 负面声量 负责人:王工",
        "ref": "T-1#n4@gw",
        "ticket": "T-3f2a9c01de-1",
        "level": "P2",
    }


async def test_a_wrong_secret_is_refused_and_not_retried(
    rules: RuleSet, vendors: SmsVendors, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with notifier_for(rules, vendors, retries=3) as notifier:
        aliyun = await notifier.send(
            "ops-sms-wrong", make_ticket(), "opened", delivery_id="d1"
        )
        gateway = await notifier.send(
            "gateway-sms-wrong", make_ticket(), "opened", delivery_id="d2"
        )

    assert [code for code, _ in vendors.refused] == ["SignatureDoesNotMatch"]
    assert vendors.sent == []
    assert (aliyun.status, aliyun.attempts, aliyun.retryable) == ("failed", 1, False)
    assert aliyun.error.startswith(
        "Alibaba Cloud SMS SignatureDoesNotMatch: Specified signature is not "
        "matched with our calculation. server string to sign is:POST&%2F&"
        "AccessKeyId%3D<access_key_id>%26"
    )
    assert vendors.gateway_refused == ["signature"] and vendors.gateway == []
    assert (gateway.status, gateway.attempts, gateway.retryable) == (
        "failed",
        1,
        False,
    )
    assert gateway.error == 'SMS gateway HTTP 401: {"error": "bad signature"}'
    assert "failed after 1 attempt(s)" in caplog.text
    for secret in (*SECRETS, ACCESS_KEY_ID):
        assert secret not in caplog.text
        assert secret not in aliyun.error and secret not in gateway.error


async def test_throttling_and_outages_are_retried_and_logged_without_secrets(
    rules: RuleSet, vendors: SmsVendors, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vendors.busy = ["Throttling.User"]
    async with notifier_for(rules, vendors, retries=2) as notifier:
        throttled = await notifier.send(
            "ops-sms", make_ticket(), "opened", delivery_id="d1"
        )
        down = await notifier.send(
            "gateway-down", make_ticket(), "opened", delivery_id="d2"
        )

    assert (throttled.status, throttled.attempts) == ("sent", 2)
    assert [code for code, _ in vendors.refused] == ["Throttling.User"]
    # The throttled mobile got it on the retry, with a fresh nonce; the
    # delivery id (OutId) stays.
    assert [p["PhoneNumbers"] for p in vendors.sent] == [MOBILE_A, MOBILE_B]
    nonces = {p["SignatureNonce"] for _, p in vendors.refused} | {
        p["SignatureNonce"] for p in vendors.sent
    }
    assert len(nonces) == 3
    assert {p["OutId"] for p in vendors.sent} == {"d1"}
    assert (down.status, down.attempts, down.retryable) == ("failed", 3, True)
    assert "ClientConnectorError" in down.error
    assert "Alibaba Cloud SMS Throttling.User" in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text and secret not in down.error


async def test_each_mobile_gets_at_most_its_hourly_limit(
    rules: RuleSet, vendors: SmsVendors, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    async with notifier_for(rules, vendors, clock=clock) as notifier:

        async def send(name: str, delivery_id: str) -> tuple[str, int]:
            kind = "assigned" if name.startswith("@") else "opened"
            done = await notifier.send(
                name, make_ticket(), kind, delivery_id=delivery_id
            )
            assert done.retryable == (done.status == "sent"), done
            return done.status, len(vendors.sent)

        # per_recipient_per_hour: 2; 王工's personal SMS goes to MOBILE_A too.
        assert await send("ops-sms", "d1") == ("sent", 2)
        assert await send("@王工/sms", "d2") == ("sent", 3)
        assert await send("ops-sms", "d3") == ("sent", 4), "B still had room"
        assert await send("ops-sms", "d4") == ("rate_limited", 4)
        assert await send("@王工/sms", "d5") == ("rate_limited", 4)
        clock.seconds += 3599
        assert await send("ops-sms", "d6") == ("rate_limited", 4)
        clock.seconds += 1
        assert await send("ops-sms", "d7") == ("sent", 6)

    assert [(p["PhoneNumbers"], p["OutId"]) for p in vendors.sent] == [
        (MOBILE_A, "d1"),
        (MOBILE_B, "d1"),
        (MOBILE_A, "d2"),
        (MOBILE_B, "d3"),
        (MOBILE_A, "d7"),
        (MOBILE_B, "d7"),
    ]
    assert "over 2 SMS per hour to 138****8001, +86*******8002" in caplog.text
    assert MOBILE_A not in caplog.text, "mobiles are masked in the log"


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cf") for char in text)


async def test_long_texts_are_capped_to_three_segments_and_cleaned(
    rules: RuleSet, vendors: SmsVendors
) -> None:
    ticket = make_ticket(topic="空调\n异味\u202e" * 60, rule="负面\x1b声量" * 20)
    async with notifier_for(rules, vendors) as notifier:
        aliyun = await notifier.send("ops-sms", ticket, "opened", delivery_id="d1")
        gateway = await notifier.send("gateway-sms", ticket, "opened", delivery_id="d2")

    assert aliyun.status == gateway.status == "sent"
    content = template_param(vendors.sent[0])["content"]
    assert len(content) <= 201 and len(content) > 190
    assert content.startswith("[P2] 新工单 T-3f2a9c01de-1 空调 异味")
    assert content.endswith(f"… 负责人:王工 {LINK}"), "the link is kept whole"
    assert not _has_control(content)
    (message,) = vendors.gateway
    text = message.body["message"]
    assert 60 < len(text) <= 70 and text.endswith("… 负责人:王工")
    assert not _has_control(text)


# --- through a ticket's outbox ------------------------------------------------------


@dataclass
class WallClock:
    now: datetime = field(default_factory=lambda: T0 + timedelta(hours=1))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Outbox:
    """A ticket service on the local noida-db, its notice sender and clock."""

    service: TicketService
    sender: NoticeSender
    clock: WallClock
    store: TicketStore


@asynccontextmanager
async def outbox_of(
    noida: EmbeddedServers, rules: RuleSet, vendors: SmsVendors
) -> AsyncIterator[Outbox]:
    """The worker's outbox path: one retry per round, fast backoff."""
    assert noida.addresses is not None
    store = TicketStore.connect(noida.addresses.es_url, "ts" + uuid.uuid4().hex[:10])
    clock = WallClock()
    notifier = Notifier(
        rules.channels,
        vendors.env(),
        console_url=CONSOLE,
        retries=1,
        backoff=0.01,
        max_backoff=0.05,
    )
    service = TicketService(store, lambda: rules, notifier=notifier, now=clock)
    try:
        await notifier.start()
        yield Outbox(service, NoticeSender(service), clock, store)
    finally:
        await notifier.close()
        await service.close()
        await store.close()


async def test_the_outbox_retries_throttling_and_drops_a_refused_channel(
    noida: EmbeddedServers,
    rules: RuleSet,
    vendors: SmsVendors,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with outbox_of(noida, rules, vendors) as box:
        service, sender, clock = box.service, box.sender, box.clock
        decision = await service.handle_trigger(trigger())
        assert decision.ticket is not None
        ticket_id = decision.ticket.ticket_id
        (notice,) = decision.ticket.outbox
        assert notice.channels == ("ops-sms", "ops-sms-wrong", "gateway-sms")
        # Throttled on both attempts of the first round.
        vendors.busy = ["Throttling.User", "Throttling.User"]

        clock.now += timedelta(minutes=10)
        assert await sender.run_once() == 3
        ticket, events = await service.get(ticket_id)
        assert ticket.delivery == {
            "ops-sms": "failed",
            "ops-sms-wrong": "failed",
            "gateway-sms": "sent",
        }
        (waiting,) = ticket.outbox
        assert waiting.channels == ("ops-sms",), "the refused channel is dropped"
        assert waiting.accepted == ("gateway-sms",)
        assert waiting.attempts == 1 and waiting.due_at > clock.now
        notes = {e.details["channel"]: e.note for e in events if e.action == "delivery"}
        assert notes["ops-sms"] == "Alibaba Cloud SMS Throttling.User: 触发流控"
        assert notes["ops-sms-wrong"].startswith(
            "Alibaba Cloud SMS SignatureDoesNotMatch"
        )
        # The notice keeps the error recorded last, whichever channel it was.
        assert waiting.last_error in (notes["ops-sms"], notes["ops-sms-wrong"])
        assert vendors.sent == [] and len(vendors.gateway) == 1

        assert await sender.run_once() == 0, "not due yet"
        clock.now = waiting.due_at
        assert await sender.run_once() == 1
        ticket, events = await service.get(ticket_id)
        assert ticket.outbox == () and ticket.delivery["ops-sms"] == "sent"
        delivery_id = f"{notice.notice_id}@ops-sms"
        assert [(p["PhoneNumbers"], p["OutId"]) for p in vendors.sent] == [
            (MOBILE_A, delivery_id),
            (MOBILE_B, delivery_id),
        ]
        assert vendors.gateway[0].delivery_id == f"{notice.notice_id}@gateway-sms"
        stored = json.dumps(
            [e.note for e in events] + [ticket.outbox, caplog.text], default=str
        )
        for secret in (*SECRETS, ACCESS_KEY_ID):
            assert secret not in stored


async def test_a_later_outbox_round_texts_only_the_mobiles_not_reached(
    noida: EmbeddedServers,
    rules: RuleSet,
    vendors: SmsVendors,
) -> None:
    # The group SMS reaches mobile A, then B is throttled on every attempt
    # of the round: the notice fails and waits. The next round texts B only;
    # the ticket keeps a digest of the mobiles reached, not their numbers.
    async with outbox_of(noida, rules, vendors) as box:
        service, sender, clock, store = box.service, box.sender, box.clock, box.store
        decision = await service.handle_trigger(trigger())
        assert decision.ticket is not None
        ticket_id = decision.ticket.ticket_id
        (notice,) = decision.ticket.outbox
        vendors.busy = ["OK", "Throttling.User", "Throttling.User"]

        clock.now += timedelta(minutes=10)
        assert await sender.run_once() == 3
        ticket, _ = await service.get(ticket_id)
        assert ticket.delivery["ops-sms"] == "failed"
        (waiting,) = ticket.outbox
        assert waiting.channels == ("ops-sms",)
        assert [p["PhoneNumbers"] for p in vendors.sent] == [MOBILE_A]
        assert len(waiting.reached) == 1
        answer = await store.client.get(index=store._tickets, id=ticket_id)
        document = json.dumps(answer["_source"], default=str)
        for mobile in (MOBILE_A, MOBILE_A[-8:], MOBILE_B[-8:]):
            assert mobile not in document

        clock.now = waiting.due_at
        assert await sender.run_once() == 1
        ticket, _ = await service.get(ticket_id)
        assert ticket.outbox == () and ticket.delivery["ops-sms"] == "sent"
        delivery_id = f"{notice.notice_id}@ops-sms"
        assert [(p["PhoneNumbers"], p["OutId"]) for p in vendors.sent] == [
            (MOBILE_A, delivery_id),
            (MOBILE_B, delivery_id),
        ], "A is not texted twice"
