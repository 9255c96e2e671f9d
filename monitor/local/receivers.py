"""Local stand-ins for the on-call channels, for the demo and the tests.

:class:`LocalReceivers` runs a real HTTP server (aiohttp) that takes the
webhook, DingTalk, Feishu, WeCom and Slack deliveries, and a real SMTP
server (aiosmtpd) that takes the email, both on free loopback ports in a
background thread. :meth:`LocalReceivers.env` returns the ``ALERT_*``
variables ``examples/rules.yaml`` refers to, pointing at them.

They answer like the real services do (``{"errcode": 0}``, ``{"code": 0}``,
``ok``), record what arrived and, for the demo, print a line per delivery.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from monitor.local.embedded import free_port

#: Secrets the local receivers hand out (the notifier signs with them).
DEMO_SECRET = "local-demo-secret"


@dataclass
class Received:
    """One delivery a local receiver took."""

    channel: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""


class _Mailbox:
    def __init__(self, record: Callable[[Received], None]) -> None:
        self.record = record

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        message = message_from_bytes(envelope.content)
        subject = str(make_header(decode_header(message.get("Subject", ""))))
        self.record(
            Received("email", {"subject": subject, "to": list(envelope.rcpt_tos)})
        )
        return "250 OK"


class LocalReceivers:
    """HTTP and SMTP receivers on free ports; use as a context manager.

    Args:
        on_delivery: Called (in the receivers' thread) for each delivery.

    """

    REPLIES = {
        "webhook": ("json", {"ok": True}),
        "dingtalk": ("json", {"errcode": 0, "errmsg": "ok"}),
        "feishu": ("json", {"code": 0, "msg": "success"}),
        "wecom": ("json", {"errcode": 0, "errmsg": "ok"}),
        "slack": ("text", "ok"),
    }

    def __init__(self, on_delivery: Callable[[Received], None] | None = None) -> None:
        """Prepare; nothing runs before :meth:`start`."""
        self.on_delivery = on_delivery
        self.received: list[Received] = []
        self.http_port = free_port()
        self.smtp_port = free_port()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._smtp: Controller | None = None

    def _record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)
        if self.on_delivery is not None:
            self.on_delivery(item)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self._record(Received(channel, body, dict(request.headers), raw))
        kind, reply = self.REPLIES.get(channel, ("json", {"ok": True}))
        if kind == "text":
            return web.Response(text=str(reply))
        return web.json_response(reply)

    def start(self) -> LocalReceivers:
        """Start both servers; returns once they accept connections."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/{channel}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.http_port).start()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="receivers", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("local HTTP receiver did not start")
        self._smtp = Controller(
            _Mailbox(self._record), hostname="127.0.0.1", port=self.smtp_port
        )
        self._smtp.start()
        return self

    def stop(self) -> None:
        """Stop both servers."""
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        if self._loop is not None and self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(
                self._runner.cleanup(), self._loop
            )
            future.result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> LocalReceivers:
        """Start; see :meth:`start`."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop; see :meth:`stop`."""
        self.stop()

    def env(self) -> dict[str, str]:
        """Return the ``ALERT_*`` variables of the example rules, pointing here."""
        base = f"http://127.0.0.1:{self.http_port}"
        return {
            "ALERT_WEBHOOK_URL": f"{base}/webhook",
            "ALERT_WEBHOOK_SECRET": DEMO_SECRET,
            "ALERT_DINGTALK_WEBHOOK": f"{base}/dingtalk?access_token=demo",
            "ALERT_DINGTALK_SECRET": DEMO_SECRET,
            "ALERT_FEISHU_WEBHOOK": f"{base}/feishu",
            "ALERT_FEISHU_SECRET": DEMO_SECRET,
            "ALERT_WECOM_WEBHOOK": f"{base}/wecom",
            "ALERT_SLACK_WEBHOOK": f"{base}/slack",
            "ALERT_SMTP_HOST": "127.0.0.1",
            "ALERT_SMTP_PORT": str(self.smtp_port),
            "ALERT_SMTP_USER": "",
            "ALERT_SMTP_PASSWORD": "",
        }

    def by_channel(self) -> dict[str, list[Received]]:
        """Return what arrived so far, per channel."""
        with self._lock:
            grouped: dict[str, list[Received]] = {}
            for item in self.received:
                grouped.setdefault(item.channel, []).append(item)
            return grouped
