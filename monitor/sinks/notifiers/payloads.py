r"""Channel payloads, signatures and reply checks: pure functions, no I/O.

One builder per channel shapes a :class:`~.messages.Message` (or, for the
generic webhook, the ticket itself) into what the channel takes. Signing
follows each vendor's document:

* ``webhook``: headers ``X-Monitor-Timestamp: <unix s>`` and
  ``X-Monitor-Signature: sha256=<hex HMAC-SHA256(key=secret,
  msg=f"{timestamp}.{body}")>`` (see :mod:`monitor.sinks.notifiers`).
* DingTalk: ``&timestamp=<unix ms>&sign=<urlencode(base64(HMAC-SHA256(
  key=secret, msg=f"{timestamp}\n{secret}")))>`` appended to the URL.
* Feishu/Lark: body fields ``timestamp`` (unix s, as text) and ``sign``
  (``base64(HMAC-SHA256(key=f"{timestamp}\n{secret}", msg=b""))``).
* WeCom and Slack: no signature; the key is in the URL.

:func:`check_reply` reads a reply the way each vendor documents it and raises
:class:`DeliveryError`, retryable or not.

Each builder escapes its vendor's markup on its own (post text is a
stranger's): Slack mrkdwn escapes ``& < >`` and swaps ``* _ ~ ``` for
look-alikes in ``verbatim`` text objects, chat markdown swaps markup
characters for look-alikes, HTML is escaped, bare URLs in text are defanged
(:func:`~.messages.defang_urls`), and only URLs that
:func:`~.messages.link_target` accepts become links (Feishu ``a`` tags, Slack
``<url|text>``, markdown and HTML links) or reach the webhook's evidence.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlencode

from monitor.analysis.tickets.model import Ticket, TicketEvent
from monitor.errors import MonitorError
from monitor.records import cut_utf8
from monitor.sinks.notifiers.messages import (
    Message,
    chat_text,
    defang_urls,
    link_target,
    one_line,
)

#: WeCom refuses markdown content over 4096 bytes.
WECOM_MAX_CONTENT_BYTES = 4096
#: Slack refuses header text over 150 and section text over 3000 characters.
_SLACK_HEADER_CHARS = 150
_SLACK_SECTION_CHARS = 3000
#: Slack mrkdwn's emphasis and code marks, and the look-alikes shown instead
#: in text from posts.
_SLACK_MARKUP = str.maketrans({"*": "＊", "_": "＿", "~": "～", "`": "｀"})

#: Python 3.11 drops the space between two encoded words when it folds a
#: long non-ASCII header ("空调异味 负面声量" arrives as "空调异味负面声量"), so
#: mail is flattened without folding; the lines stay far below 998 bytes.
_SMTP_UNFOLDED = policy.SMTP.clone(max_line_length=None)

#: Robot reply codes that mean "too fast" or "busy" and are retried. Any other
#: non-zero code (a bad signature, a missing keyword, an IP not on the
#: allow-list, a disabled robot) fails at once.
RETRYABLE_CODES: Mapping[str, frozenset[int]] = {
    "dingtalk": frozenset({-1, 130101, 410100}),
    "feishu": frozenset({11232}),
    "wecom": frozenset({-1, 45009}),
}
#: HTTP statuses retried besides 5xx.
RETRYABLE_STATUSES = frozenset({408, 429})


class DeliveryError(MonitorError):
    """One attempt to deliver a notification failed.

    Attributes:
        reason: What went wrong, safe to show (never a URL or a secret).
        retryable: True if the same request may succeed later.
        retry_after: Seconds the receiver asked us to wait, if it did.

    """

    def __init__(
        self, reason: str, *, retryable: bool, retry_after: float | None = None
    ) -> None:
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(reason)


# --- generic webhook ----------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {
            item.name: _jsonable(getattr(value, item.name)) for item in fields(value)
        }
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_jsonable(item) for item in value)
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def webhook_payload(
    ticket: Ticket, kind: str, event: TicketEvent | None, *, sent_at: datetime
) -> dict[str, Any]:
    """Build the generic webhook's JSON body.

    Args:
        ticket: The ticket; every field is included, datetimes as ISO 8601.
            An evidence post's ``url`` is ``null`` unless it is an http(s)
            URL (:func:`~.messages.link_target`), so a receiver that shows
            it as a link cannot be handed a ``javascript:`` one.
        kind: One of ``NOTIFY_KINDS``.
        event: The event behind the notification, or ``None``.
        sent_at: When the notification was sent (timezone-aware).

    Returns:
        ``{"kind", "ticket", "event", "sent_at"}``, ready for :func:`encode_json`.

    """
    body = _jsonable(ticket)
    body["evidence"] = [
        {**post, "url": link_target(post.get("url"))} for post in body["evidence"]
    ]
    return {
        "kind": kind,
        "ticket": body,
        "event": None if event is None else _jsonable(event),
        "sent_at": sent_at.isoformat(),
    }


def webhook_digest_payload(
    items: Sequence[tuple[Ticket, str, int]], *, sent_at: datetime
) -> dict[str, Any]:
    """Build the generic webhook's body for a digest of several notices.

    Args:
        items: ``(ticket, kind, folded)`` per notice, most urgent first.
        sent_at: When it was sent (timezone-aware).

    Returns:
        ``{"kind": "digest", "notices": [{"kind", "folded", "ticket"}...],
        "sent_at"}``; each ticket as in :func:`webhook_payload`.

    """
    notices = []
    for ticket, kind, folded in items:
        body = webhook_payload(ticket, kind, None, sent_at=sent_at)["ticket"]
        notices.append({"kind": kind, "folded": folded, "ticket": body})
    return {"kind": "digest", "notices": notices, "sent_at": sent_at.isoformat()}


def encode_json(payload: Mapping[str, Any]) -> bytes:
    """Encode a payload as compact UTF-8 JSON: the bytes that are sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Return ``sha256=<hex HMAC-SHA256(key=secret, msg=f"{timestamp}.{body}")>``.

    Args:
        secret: The channel's shared secret (UTF-8).
        timestamp: Unix seconds, as sent in ``X-Monitor-Timestamp``.
        body: The raw request body.

    """
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_headers(
    body: bytes,
    *,
    delivery_id: str,
    timestamp: int,
    secret: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the webhook request's headers, signed when there is a secret.

    Args:
        body: The raw request body.
        delivery_id: ``X-Monitor-Delivery``, shared by every retry of one
            delivery so the receiver can drop repeats.
        timestamp: Unix seconds of this attempt.
        secret: The channel's secret, or ``None`` to send unsigned.
        extra: Headers from the channel's settings (ours take precedence).

    """
    headers = dict(extra or {})
    headers["Content-Type"] = "application/json; charset=utf-8"
    headers["X-Monitor-Delivery"] = delivery_id
    if secret:
        headers["X-Monitor-Timestamp"] = str(timestamp)
        headers["X-Monitor-Signature"] = webhook_signature(secret, timestamp, body)
    return headers


# --- chat robots --------------------------------------------------------------


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    r"""Return DingTalk's signature, base64 HMAC-SHA256 of ``f"{ts}\n{secret}"``.

    Args:
        secret: The robot's ``SEC...`` secret, which is also the HMAC key.
        timestamp_ms: Unix milliseconds.

    Returns:
        The base64 text, not yet URL-encoded.

    """
    signed = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_url(webhook: str, secret: str | None, timestamp_ms: int) -> str:
    """Return the robot URL, with ``&timestamp=..&sign=..`` when there is a secret.

    Args:
        webhook: The robot's URL (``.../robot/send?access_token=...``).
        secret: The robot's signing secret, or ``None``.
        timestamp_ms: Unix milliseconds of this attempt.

    """
    if not secret:
        return webhook
    query = urlencode(
        {"timestamp": timestamp_ms, "sign": dingtalk_sign(secret, timestamp_ms)}
    )
    return f"{webhook}{'&' if '?' in webhook else '?'}{query}"


def _markdown_with_actions(message: Message) -> str:
    """Return the chat markdown, then each action as a ``[label](url)`` link."""
    text = message.markdown
    links = [
        f"[{chat_text(label)}]({target})" for label, target in message.action_targets
    ]
    return text + ("\n\n" + "　".join(links) if links else "")


def dingtalk_payload(
    message: Message, *, at_mobiles: Sequence[str] = ()
) -> dict[str, Any]:
    """Build a DingTalk custom robot ``markdown`` or ``actionCard`` message.

    With action links (``message.actions``) and no one to @, it is an
    independent-jump ``actionCard``: the markdown text and one button
    (``btns``: ``title``, ``actionURL``) per action. DingTalk alerts @mentioned
    people only in ``text`` and ``markdown`` messages, so a message that @s
    someone stays ``markdown``, with the actions as links in the text.

    Args:
        message: The neutral message.
        at_mobiles: Phone numbers to @. DingTalk alerts them only when the
            text names them too, so each is appended as ``@<mobile>``.

    """
    actions = message.action_targets
    if actions and not at_mobiles:
        return {
            "msgtype": "actionCard",
            "actionCard": {
                "title": defang_urls(message.title),
                "text": message.markdown,
                "btnOrientation": "1",
                "btns": [
                    {"title": defang_urls(label), "actionURL": target}
                    for label, target in actions
                ],
            },
        }
    text = _markdown_with_actions(message)
    if at_mobiles:
        text += "\n\n" + " ".join(f"@{mobile}" for mobile in at_mobiles)
    return {
        "msgtype": "markdown",
        "markdown": {"title": defang_urls(message.title), "text": text},
        "at": {"atMobiles": list(at_mobiles), "isAtAll": False},
    }


def feishu_sign(secret: str, timestamp: int) -> str:
    r"""Return Feishu's signature: base64 HMAC-SHA256 keyed ``f"{ts}\n{secret}"``.

    Args:
        secret: The bot's signing secret.
        timestamp: Unix seconds.

    Returns:
        The base64 text of the HMAC of an empty message.

    """
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def feishu_payload(
    message: Message, *, secret: str | None = None, timestamp: int = 0
) -> dict[str, Any]:
    """Build a Feishu/Lark custom bot ``post`` (rich text) message.

    With action links (``message.actions``) it is an ``interactive`` card
    instead (:func:`feishu_card`), whose buttons open them.

    Args:
        message: The neutral message.
        secret: The bot's signing secret; adds ``timestamp`` and ``sign``.
        timestamp: Unix seconds of this attempt (used only with a secret).

    """
    content: list[list[dict[str, str]]] = [
        [{"tag": "text", "text": f"{label}：{defang_urls(value)}"}]
        for label, value in message.facts
    ]
    for number, (excerpt, url) in enumerate(message.evidence, 1):
        line = [{"tag": "text", "text": f"证据 {number}：{defang_urls(excerpt)} "}]
        target = link_target(url)
        if target:
            line.append({"tag": "a", "text": "原帖", "href": target})
        content.append(line)
    link = link_target(message.link)
    if link:
        content.append([{"tag": "a", "text": "查看工单", "href": link}])
    payload: dict[str, Any] = (
        {"msg_type": "interactive", "card": feishu_card(message)}
        if message.action_targets
        else {
            "msg_type": "post",
            "content": {
                "post": {
                    "zh_cn": {"title": defang_urls(message.title), "content": content}
                }
            },
        }
    )
    if secret:
        payload["timestamp"] = str(timestamp)
        payload["sign"] = feishu_sign(secret, timestamp)
    return payload


def feishu_card(message: Message) -> dict[str, Any]:
    """Build a Feishu/Lark message card: header, plain-text facts, link buttons.

    Every text from the message is a ``plain_text`` object (never
    ``lark_md``), with bare URLs defanged; the only links are the buttons'
    ``url``: the actions (``primary``), the evidence posts and the console
    page, each accepted by :func:`~.messages.link_target`.
    """
    facts = "\n".join(
        f"{defang_urls(label)}：{defang_urls(value)}" for label, value in message.facts
    )
    elements: list[dict[str, Any]] = [
        {"tag": "div", "text": {"tag": "plain_text", "content": facts}}
    ]
    buttons: list[dict[str, Any]] = [
        _feishu_button(label, target, "primary")
        for label, target in message.action_targets
    ]
    for number, (excerpt, url) in enumerate(message.evidence, 1):
        text = f"证据 {number}：{defang_urls(excerpt)}"
        elements.append({"tag": "div", "text": {"tag": "plain_text", "content": text}})
        target = link_target(url)
        if target:
            buttons.append(_feishu_button(f"原帖 {number}", target, "default"))
    link = link_target(message.link)
    if link:
        buttons.append(_feishu_button("查看工单", link, "default"))
    if buttons:
        elements.append({"tag": "action", "actions": buttons})
    return {
        "config": {"wide_screen_mode": True},
        "header": {
            "title": {"tag": "plain_text", "content": defang_urls(message.title)},
            "template": "red",
        },
        "elements": elements,
    }


def _feishu_button(label: str, url: str, kind: str) -> dict[str, Any]:
    return {
        "tag": "button",
        "text": {"tag": "plain_text", "content": defang_urls(label)},
        "type": kind,
        "url": url,
    }


#: WeCom template card limits (characters, as its document recommends) and
#: the facts it shows as ``horizontal_content_list`` (at most 6).
_WECOM_TITLE_CHARS = 26
_WECOM_SUBTITLE_CHARS = 112
_WECOM_KEY_CHARS = 5
_WECOM_VALUE_CHARS = 26
_WECOM_JUMP_CHARS = 13
_WECOM_MAX_ROWS = 6
_WECOM_MAX_JUMPS = 3
_WECOM_CARD_FACTS = ("优先级", "状态", "话题", "负责人", "观测值", "确认期限")


def wecom_payload(
    message: Message, *, mentioned_list: Sequence[str] = ()
) -> dict[str, Any]:
    """Build a WeCom group robot ``markdown`` or ``template_card`` message.

    With action links (``message.actions``) and no one to @, it is a
    ``text_notice`` template card (:func:`wecom_card`): a group robot's card
    has no button callbacks, so the actions are ``jump_list`` links. A
    message that @s someone stays ``markdown`` (the card cannot @), with the
    actions as links in the text.

    Args:
        message: The neutral message.
        mentioned_list: User ids to @, written ``<@userid>`` in the text (the
            markdown type has no ``mentioned_list`` field of its own).

    """
    if message.action_targets and not mentioned_list:
        return {"msgtype": "template_card", "template_card": wecom_card(message)}
    mentions = "".join(f"<@{user}>" for user in mentioned_list)
    tail = f"\n{mentions}" if mentions else ""
    links = [
        f"[{chat_text(label)}]({target})" for label, target in message.action_targets
    ]
    if links:
        tail = "\n\n" + "　".join(links) + tail
    limit = WECOM_MAX_CONTENT_BYTES - len(tail.encode())
    content = cut_utf8(message.markdown, limit, ellipsis="…") + tail
    return {"msgtype": "markdown", "markdown": {"content": content}}


def wecom_card(message: Message) -> dict[str, Any]:
    """Build a WeCom ``text_notice`` template card: title, key facts, jump links.

    Texts are plain (the card renders no markup) with bare URLs defanged and
    cut to the lengths WeCom's document recommends; ``jump_list`` holds the
    actions then the console page (at most 3), ``card_action`` (required)
    opens the console page, or the first action without one.
    """
    text = one_line
    facts = dict(message.facts)
    rows = [
        {
            "keyname": text(label, _WECOM_KEY_CHARS),
            "value": text(defang_urls(facts[label]), _WECOM_VALUE_CHARS),
        }
        for label in _WECOM_CARD_FACTS
        if label in facts
    ][:_WECOM_MAX_ROWS]
    jumps = [(label, target) for label, target in message.action_targets]
    link = link_target(message.link)
    if link:
        jumps.append(("查看工单", link))
    jumps = jumps[:_WECOM_MAX_JUMPS]
    subtitle = f"证据：{message.evidence[0][0]}" if message.evidence else message.title
    card: dict[str, Any] = {
        "card_type": "text_notice",
        "source": {"desc": "舆情监控"},
        "main_title": {"title": text(defang_urls(message.title), _WECOM_TITLE_CHARS)},
        "sub_title_text": text(defang_urls(subtitle), _WECOM_SUBTITLE_CHARS),
        "horizontal_content_list": rows,
        "jump_list": [
            {
                "type": 1,
                "url": target,
                "title": text(defang_urls(label), _WECOM_JUMP_CHARS),
            }
            for label, target in jumps
        ],
        "card_action": {"type": 1, "url": link or jumps[0][1]},
    }
    return card


def _mrkdwn(text: str) -> str:
    # Slack's three control characters; with them escaped, text cannot open
    # a <!channel>, <@user> or <url|link> of its own.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_text(text: str) -> str:
    # Text from a post: escaped, emphasis and code marks swapped for
    # look-alikes, bare URLs defanged.
    return _mrkdwn(defang_urls(text)).translate(_SLACK_MARKUP)


def _mrkdwn_link(url: str | None, text: str) -> str:
    """Return ``<url|text>``, or "" when ``url`` is not an http(s) URL."""
    target = link_target(url)
    return f"<{_mrkdwn(target)}|{_mrkdwn(text)}>" if target else ""


def _mrkdwn_section(text: str) -> dict[str, Any]:
    # verbatim: Slack neither auto-links URLs nor parses channel names or
    # mentions in the text; our own <url|text> links still work.
    section = text[:_SLACK_SECTION_CHARS]
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": section, "verbatim": True},
    }


def slack_payload(message: Message, *, channel: str | None = None) -> dict[str, Any]:
    """Build a Slack incoming-webhook message: fallback ``text`` plus blocks.

    Every text is mrkdwn-escaped, the ``text`` fallback too (Slack reads it
    for notifications), so the only ``<...>`` in the payload are its own
    http(s) links; text from posts has its ``* _ ~ ``` swapped for
    look-alikes and its bare URLs defanged, and every section is
    ``verbatim`` (nothing auto-linked or parsed as a mention).

    Args:
        message: The neutral message.
        channel: Channel override, for legacy webhooks that honour it.

    """
    facts = "\n".join(
        f"*{_mrkdwn(label)}*：{_slack_text(value)}" for label, value in message.facts
    )
    header = one_line(defang_urls(message.title), _SLACK_HEADER_CHARS)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header}},
        _mrkdwn_section(facts),
    ]
    if message.evidence:
        items = "\n".join(
            f"{number}. {_slack_text(excerpt)} {_mrkdwn_link(url, '原帖')}".rstrip()
            for number, (excerpt, url) in enumerate(message.evidence, 1)
        )
        blocks.append(_mrkdwn_section(f"*证据*\n{items}"))
    link = _mrkdwn_link(message.link, "查看工单")
    if link:
        blocks.append(_mrkdwn_section(link))
    if message.action_targets:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": defang_urls(label)},
                        "url": target,
                        "action_id": f"link-{number}",
                    }
                    for number, (label, target) in enumerate(message.action_targets)
                ],
            }
        )
    fallback = "\n".join(message.render_lines(_slack_text, _mrkdwn))
    payload: dict[str, Any] = {"text": fallback, "blocks": blocks}
    if channel:
        payload["channel"] = channel
    return payload


# --- email --------------------------------------------------------------------


def email_message(
    message: Message,
    *,
    sender: str,
    recipients: Sequence[str],
    sent_at: datetime,
    delivery_id: str,
) -> EmailMessage:
    """Build a ``multipart/alternative`` email with a text and an HTML part.

    Args:
        message: The neutral message; its title is the subject.
        sender: The ``From`` address.
        recipients: The ``To`` addresses.
        sent_at: The ``Date`` (timezone-aware).
        delivery_id: Goes into the ``Message-ID``, the same on every retry.

    """
    email = EmailMessage()
    email["Subject"] = defang_urls(message.title)
    email["From"] = sender
    email["To"] = ", ".join(recipients)
    email["Date"] = format_datetime(sent_at)
    domain = sender.rpartition("@")[2] or "monitor.invalid"
    email["Message-ID"] = make_msgid(idstring=delivery_id, domain=domain)
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


def email_bytes(email: EmailMessage) -> bytes:
    """Flatten an email for SMTP (CRLF line ends, headers not folded)."""
    return email.as_bytes(policy=_SMTP_UNFOLDED)


# --- replies ------------------------------------------------------------------


def check_reply(
    kind: str, status: int, body: str, *, retry_after: float | None = None
) -> None:
    """Decide whether an HTTP reply means the channel took the message.

    Args:
        kind: Channel kind: ``webhook``, ``dingtalk``, ``feishu``, ``wecom``
            or ``slack``.
        status: HTTP status.
        body: Reply body as text.
        retry_after: The reply's ``Retry-After`` in seconds, if any.

    Raises:
        DeliveryError: Retryable for HTTP 408, 429 and 5xx and for the
            robots' "too fast / busy" codes (:data:`RETRYABLE_CODES`);
            permanent for any other error status or code, and for a robot
            reply that is not what the vendor documents.

    """
    snippet = one_line(body, 200)
    if status in RETRYABLE_STATUSES or status >= 500:
        raise DeliveryError(
            f"HTTP {status}: {snippet}", retryable=True, retry_after=retry_after
        )
    if kind in RETRYABLE_CODES:
        code, text = robot_code(body)
        if code == 0 and 200 <= status < 300:
            return
        if code is not None and code != 0:
            raise DeliveryError(
                f"{kind} error {code}: {one_line(text, 200)}",
                retryable=code in RETRYABLE_CODES[kind],
                retry_after=retry_after,
            )
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}: {snippet}", retryable=False)
    if kind == "slack" and body.strip() != "ok":
        raise DeliveryError(f"slack replied {snippet!r}", retryable=False)
    if kind in RETRYABLE_CODES:
        raise DeliveryError(f"unexpected {kind} reply: {snippet}", retryable=False)


def robot_code(body: str) -> tuple[int | None, str]:
    """Return a robot reply's code and message, or ``(None, "")``.

    Reads DingTalk and WeCom's ``errcode``/``errmsg``, Feishu's ``code``/``msg``
    and Feishu's older ``StatusCode``/``StatusMessage``.
    """
    try:
        reply = json.loads(body)
    except ValueError:
        return None, ""
    if not isinstance(reply, dict):
        return None, ""
    for code_key, text_key in (
        ("errcode", "errmsg"),
        ("code", "msg"),
        ("StatusCode", "StatusMessage"),
    ):
        code = reply.get(code_key)
        if isinstance(code, int) and not isinstance(code, bool):
            return code, str(reply.get(text_key, ""))
    return None, ""
