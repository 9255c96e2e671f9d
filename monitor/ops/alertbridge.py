r"""A signing bridge from Alertmanager to DingTalk and Feishu robots.

Alertmanager has native email, webhook and Slack receivers, but DingTalk and
Feishu robots with a signing secret need a signature computed per request,
which Alertmanager cannot do. This small aiohttp service takes Alertmanager's
webhook JSON (version 4) on ``POST /dingtalk/<name>`` or ``POST /feishu/<name>``,
turns it into a DingTalk ``markdown`` message or a Feishu interactive card,
signs it the vendor's way (:func:`~monitor.sinks.notifiers.payloads.dingtalk_url`,
:func:`~monitor.sinks.notifiers.payloads.feishu_sign`, the functions the
worker's notifiers use) and posts it.

It is deliberately not the worker: an alert may be that the workers are down.
Run it with ``monitor alert-bridge --config FILE``; the configuration
(see ``dashboards/alertmanager/alertbridge.yml``) names each receiver and
reads every secret from a file: the robot URL (it holds the access token),
the signing secret and the bearer token Alertmanager must present
(``http_config.authorization.credentials_file`` on its side).

Label and annotation text is not trusted markup: it passes through
:func:`~monitor.sinks.notifiers.messages.chat_text` (markup characters swapped
for look-alikes, URLs defanged, line breaks flattened) and is cut to a few
hundred characters; only the Alertmanager and generator URLs accepted by
:func:`~monitor.sinks.notifiers.messages.link_target` become links.

Replies: 200 when the robot took the message, 502 when it failed in a way
worth retrying (Alertmanager retries 5xx), 424 when it refused for good (a bad
signature or keyword: retrying would not help), 400 for a body that is not
Alertmanager's JSON, 401 without the right bearer token, 404 for an unknown
receiver.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from monitor.errors import MonitorError
from monitor.records import cut_utf8
from monitor.sinks.notifiers.messages import chat_text, link_target, one_line
from monitor.sinks.notifiers.payloads import (
    DeliveryError,
    check_reply,
    dingtalk_url,
    feishu_sign,
)

log = logging.getLogger(__name__)

KINDS = ("dingtalk", "feishu")
DEFAULT_PORT = 9095
#: Alerts listed in one message; the rest are counted ("… and 3 more").
MAX_ALERTS = 20
#: Characters kept of one label value or annotation.
MAX_FIELD_CHARS = 300
#: DingTalk markdown text is cut to stay well inside the robot's 20000 bytes.
MAX_TEXT_BYTES = 18000
#: Labels not repeated on each alert's line (they are in the title).
_QUIET_LABELS = frozenset({"alertname", "severity"})
_APP_CONFIG: web.AppKey[BridgeConfig] = web.AppKey("config")
_APP_SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session")
_APP_CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")


class BridgeConfigError(MonitorError):
    """The bridge's configuration file is not usable."""


@dataclass(frozen=True)
class Receiver:
    """One robot the bridge posts to.

    Attributes:
        kind: ``dingtalk`` or ``feishu``.
        name: The last part of the path Alertmanager posts to.
        url: The robot's webhook URL (read from ``url_file``).
        secret: The robot's signing secret (from ``secret_file``), if any.
        at_mobiles: DingTalk only: phone numbers to @ on firing alerts.

    """

    kind: str
    name: str
    url: str
    secret: str | None = field(default=None, repr=False)
    at_mobiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class BridgeConfig:
    """The bridge's settings, from :func:`load_config`."""

    receivers: Mapping[tuple[str, str], Receiver]
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0


def _read_secret(base: Path, value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BridgeConfigError(f"{what} must be a file path")
    path = base / value
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BridgeConfigError(f"cannot read {what} {path}: {exc}") from exc
    if not text:
        raise BridgeConfigError(f"{what} {path} is empty")
    return text


def load_config(path: Path) -> BridgeConfig:
    """Read the bridge's YAML configuration and the secret files it names.

    Relative file paths are resolved against the configuration's directory.

    Raises:
        BridgeConfigError: The file, a receiver or a secret file is unusable.

    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BridgeConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise BridgeConfigError(f"{path}: expected a mapping")
    base = path.parent
    unknown = set(raw) - {"listen", "token_file", "timeout_seconds", "receivers"}
    if unknown:
        raise BridgeConfigError(f"{path}: unknown keys {sorted(unknown)}")
    listen = raw.get("listen") or {}
    if not isinstance(listen, dict):
        raise BridgeConfigError("listen must be a mapping of host and port")
    receivers: dict[tuple[str, str], Receiver] = {}
    entries = raw.get("receivers")
    if not isinstance(entries, list) or not entries:
        raise BridgeConfigError(f"{path}: receivers must be a non-empty list")
    for entry in entries:
        if not isinstance(entry, dict):
            raise BridgeConfigError("each receiver must be a mapping")
        name, kind = entry.get("name"), entry.get("kind")
        if not isinstance(name, str) or not name.replace("-", "").isalnum():
            raise BridgeConfigError(f"receiver name {name!r}: letters, digits, '-'")
        if kind not in KINDS:
            raise BridgeConfigError(f"receiver {name}: kind must be one of {KINDS}")
        extra = set(entry) - {"name", "kind", "url_file", "secret_file", "at_mobiles"}
        if extra:
            raise BridgeConfigError(f"receiver {name}: unknown keys {sorted(extra)}")
        url = _read_secret(base, entry.get("url_file"), f"receiver {name} url_file")
        if link_target(url) is None:
            raise BridgeConfigError(f"receiver {name}: url_file holds no http(s) URL")
        secret = (
            _read_secret(base, entry["secret_file"], f"receiver {name} secret_file")
            if entry.get("secret_file")
            else None
        )
        mobiles = entry.get("at_mobiles") or []
        if kind != "dingtalk" and mobiles:
            raise BridgeConfigError(f"receiver {name}: at_mobiles is DingTalk's")
        if (kind, name) in receivers:
            raise BridgeConfigError(f"receiver {kind}/{name} defined twice")
        receivers[(kind, name)] = Receiver(
            kind, name, url, secret, tuple(str(m) for m in mobiles)
        )
    token = (
        _read_secret(base, raw["token_file"], "token_file")
        if raw.get("token_file")
        else None
    )
    try:
        return BridgeConfig(
            receivers=receivers,
            host=str(listen.get("host", "127.0.0.1")),
            port=int(listen.get("port", DEFAULT_PORT)),
            token=token,
            timeout_seconds=float(raw.get("timeout_seconds", 10.0)),
        )
    except (TypeError, ValueError) as exc:
        raise BridgeConfigError(f"{path}: {exc}") from exc


# --- rendering -----------------------------------------------------------------


def _text(value: object) -> str:
    """Untrusted label or annotation text, safe in chat markdown and lark_md."""
    return chat_text(one_line(str(value), MAX_FIELD_CHARS))


def _alerts(notification: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    alerts = notification.get("alerts")
    if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
        raise ValueError("alerts must be a list of objects")
    return alerts


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def title(notification: Mapping[str, Any]) -> str:
    """Return ``[FIRING:2] MonitorWorkerDown`` (escaped) for a notification."""
    status = str(notification.get("status", "firing")).upper()
    firing = sum(1 for a in _alerts(notification) if a.get("status") == "firing")
    common = _mapping(notification.get("commonLabels"))
    group = _mapping(notification.get("groupLabels"))
    name = common.get("alertname") or group.get("alertname") or "alerts"
    count = f":{firing}" if status == "FIRING" else ""
    return f"[{_text(status)}{count}] {_text(name)}"


def _alert_lines(notification: Mapping[str, Any]) -> list[str]:
    alerts = _alerts(notification)
    lines = []
    for alert in alerts[:MAX_ALERTS]:
        labels = _mapping(alert.get("labels"))
        annotations = _mapping(alert.get("annotations"))
        summary = annotations.get("summary") or annotations.get("description") or ""
        what = _text(summary) if summary else _text(labels.get("alertname", ""))
        shown = ", ".join(
            f"{_text(key)}={_text(value)}"
            for key, value in sorted(labels.items())
            if key not in _QUIET_LABELS
        )
        resolved = alert.get("status") == "resolved"
        status = "已恢复 resolved" if resolved else "告警 firing"
        line = f"- **{status}** {what}"
        if shown:
            line += f" ({shown})"
        since = alert.get("startsAt")
        if isinstance(since, str) and since:
            line += f" since {_text(since[:19].replace('T', ' '))} UTC"
        link = link_target(alert.get("generatorURL"))
        if link:
            line += f" [graph]({link})"
        lines.append(line)
    if len(alerts) > MAX_ALERTS:
        lines.append(f"- … and {len(alerts) - MAX_ALERTS} more")
    return lines


def _header_lines(notification: Mapping[str, Any]) -> list[str]:
    common = _mapping(notification.get("commonLabels"))
    severity = common.get("severity")
    return [f"**severity**: {_text(severity)}"] if severity else []


def _footer(notification: Mapping[str, Any]) -> str:
    link = link_target(notification.get("externalURL"))
    return f"[Alertmanager]({link})" if link else ""


def dingtalk_message(
    notification: Mapping[str, Any], *, at_mobiles: Sequence[str] = ()
) -> dict[str, Any]:
    """Build a DingTalk ``markdown`` message from Alertmanager's JSON."""
    heading = title(notification)
    parts = [f"#### {heading}", *_header_lines(notification), ""]
    parts += _alert_lines(notification)
    footer = _footer(notification)
    if footer:
        parts += ["", footer]
    mention = notification.get("status") == "firing" and at_mobiles
    tail = ("\n\n" + " ".join(f"@{m}" for m in at_mobiles)) if mention else ""
    text = cut_utf8("\n".join(parts), MAX_TEXT_BYTES - len(tail.encode()), ellipsis="…")
    return {
        "msgtype": "markdown",
        "markdown": {"title": heading, "text": text + tail},
        "at": {"atMobiles": list(at_mobiles) if mention else [], "isAtAll": False},
    }


def feishu_card(
    notification: Mapping[str, Any], *, secret: str | None = None, timestamp: int = 0
) -> dict[str, Any]:
    """Build a Feishu interactive card from Alertmanager's JSON, signed if asked."""
    resolved = notification.get("status") == "resolved"
    body = "\n".join([*_header_lines(notification), *_alert_lines(notification)])
    elements: list[dict[str, Any]] = [
        {"tag": "div", "text": {"tag": "lark_md", "content": body}}
    ]
    link = link_target(notification.get("externalURL"))
    if link:
        elements.append(
            {
                "tag": "action",
                "actions": [
                    {
                        "tag": "button",
                        "text": {"tag": "plain_text", "content": "Alertmanager"},
                        "url": link,
                        "type": "default",
                    }
                ],
            }
        )
    payload: dict[str, Any] = {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {
                "title": {"tag": "plain_text", "content": title(notification)},
                "template": "green" if resolved else "red",
            },
            "elements": elements,
        },
    }
    if secret:
        payload["timestamp"] = str(timestamp)
        payload["sign"] = feishu_sign(secret, timestamp)
    return payload


def request_for(
    receiver: Receiver, notification: Mapping[str, Any], now: float
) -> tuple[str, dict[str, Any]]:
    """Return the signed URL and the JSON body to post for ``notification``."""
    if receiver.kind == "dingtalk":
        url = dingtalk_url(receiver.url, receiver.secret, int(now * 1000))
        return url, dingtalk_message(notification, at_mobiles=receiver.at_mobiles)
    return receiver.url, feishu_card(
        notification, secret=receiver.secret, timestamp=int(now)
    )


# --- the service -------------------------------------------------------------------


def _authorized(config: BridgeConfig, request: web.Request) -> bool:
    if config.token is None:
        return True
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {config.token}"
    return hmac.compare_digest(given.encode(), expected.encode())


async def _notify(request: web.Request) -> web.Response:
    config = request.app[_APP_CONFIG]
    if not _authorized(config, request):
        return web.json_response({"error": "unauthorized"}, status=401)
    key = (request.match_info["kind"], request.match_info["name"])
    receiver = config.receivers.get(key)
    if receiver is None:
        return web.json_response({"error": "no such receiver"}, status=404)
    try:
        notification = json.loads(await request.read())
        if not isinstance(notification, dict) or notification.get("version") != "4":
            raise ValueError("not Alertmanager's webhook JSON version 4")
        url, body = request_for(receiver, notification, request.app[_APP_CLOCK]())
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    session = request.app[_APP_SESSION]
    try:
        async with session.post(url, json=body) as reply:
            text = await reply.text()
            check_reply(receiver.kind, reply.status, text)
    except DeliveryError as exc:
        log.warning("%s/%s refused the alert: %s", *key, exc)
        status = 502 if exc.retryable else 424
        return web.json_response({"error": str(exc)}, status=status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("%s/%s unreachable: %s", *key, exc)
        return web.json_response({"error": f"unreachable: {exc}"}, status=502)
    log.info("%s/%s took %d alerts", *key, len(notification["alerts"]))
    return web.json_response({"status": "sent"})


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


def create_app(
    config: BridgeConfig, *, clock: Callable[[], float] = time.time
) -> web.Application:
    """Return the bridge's aiohttp application (it owns one HTTP client session)."""
    app = web.Application(client_max_size=1024 * 1024)
    app[_APP_CONFIG] = config
    app[_APP_CLOCK] = clock

    async def session_context(app: web.Application) -> Any:
        timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            app[_APP_SESSION] = session
            yield

    app.cleanup_ctx.append(session_context)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_post("/{kind:dingtalk|feishu}/{name}", _notify)
    return app


def run(config: BridgeConfig) -> None:
    """Serve until interrupted."""
    web.run_app(create_app(config), host=config.host, port=config.port, print=None)
