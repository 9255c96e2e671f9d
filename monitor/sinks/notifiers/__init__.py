"""Notifications about alert tickets: webhook, DingTalk, Feishu, WeCom, Slack, email.

A ticket becomes one neutral :class:`Message` (:func:`build_message`, in
:mod:`.messages`), which one pure function per channel shapes into that
channel's payload (:mod:`.payloads`). :class:`Notifier` (:mod:`.notifier`)
sends a notification to its channels concurrently and returns one
:class:`Delivery` per channel; a channel's failure never raises.

Retries and limits
------------------
Each channel is retried with capped exponential backoff (``backoff`` seconds,
doubling, at most ``max_backoff``, or what ``Retry-After`` asks within that
cap) on connection errors, timeouts, HTTP 408/429/5xx, transient SMTP replies
(4xx) and the robots' documented "too fast / busy" codes (DingTalk 130101,
410100 and -1, Feishu 11232, WeCom 45009 and -1). Any other robot code (a bad
signature, a missing keyword, an IP not on the allow-list, a disabled robot)
fails at once. Each channel has a token bucket of ``rate_per_minute``
notifications (bursts up to that many): a notification over the limit is
``rate_limited`` and not sent. The vendors limit too: DingTalk and WeCom take
20 messages a minute per robot, Feishu 100 a minute and 5 a second.

Channels
--------
``dingtalk`` and ``wecom`` get ``markdown`` messages, ``feishu`` a ``post``
(rich text), ``slack`` a ``text`` fallback with mrkdwn blocks, ``email`` a
``multipart/alternative`` mail (text and HTML) whose subject is the title,
e.g. ``[P2] 新工单 T-3f2a9c01de-1 空调异味 负面声量``. Email uses STARTTLS when
``starttls: true``, never when ``false``, and when the server offers it if the
key is absent; ``use_tls: true`` means TLS from the start (port 465).

Verifying a ``webhook`` delivery
--------------------------------
The request is a ``POST`` of UTF-8 JSON::

    {"kind": "opened", "ticket": {...every ticket field...},
     "event": {...} | null, "sent_at": "2026-11-20T05:00:00+00:00"}

(datetimes are ISO 8601 with their offset). Every request carries
``X-Monitor-Delivery``, an id that stays the same on each retry of one
notification to one channel: keep the ids you have processed and drop
repeats. When the channel has a ``secret``, the request also carries::

    X-Monitor-Timestamp: 1763614800
    X-Monitor-Signature: sha256=<hex HMAC-SHA256(key=secret, msg=signed)>

where ``signed`` is the timestamp's ASCII digits, a ``.``, and the raw body
bytes exactly as received, i.e. ``f"{timestamp}.{body}"``. To verify,
recompute the HMAC over the raw body (before any JSON parsing), compare with
:func:`hmac.compare_digest`, and refuse timestamps more than five minutes from
your clock so that a recorded request cannot be replayed. Each retry is signed
afresh with its own timestamp::

    expected = "sha256=" + hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
"""

from __future__ import annotations

from monitor.sinks.notifiers.messages import (
    KIND_LABELS,
    NOTIFY_KINDS,
    Message,
    build_message,
    link_target,
    ticket_link,
)
from monitor.sinks.notifiers.notifier import (
    DELIVERY_STATUSES,
    FAILED,
    RATE_LIMITED,
    SENT,
    SKIPPED,
    Delivery,
    Notifier,
    TokenBucket,
)
from monitor.sinks.notifiers.payloads import (
    RETRYABLE_CODES,
    DeliveryError,
    check_reply,
    dingtalk_payload,
    dingtalk_sign,
    dingtalk_url,
    email_bytes,
    email_message,
    encode_json,
    feishu_payload,
    feishu_sign,
    slack_payload,
    webhook_headers,
    webhook_payload,
    webhook_signature,
    wecom_payload,
)

__all__ = [
    "DELIVERY_STATUSES",
    "FAILED",
    "KIND_LABELS",
    "NOTIFY_KINDS",
    "RATE_LIMITED",
    "RETRYABLE_CODES",
    "SENT",
    "SKIPPED",
    "Delivery",
    "DeliveryError",
    "Message",
    "Notifier",
    "TokenBucket",
    "build_message",
    "check_reply",
    "dingtalk_payload",
    "dingtalk_sign",
    "dingtalk_url",
    "email_bytes",
    "email_message",
    "encode_json",
    "feishu_payload",
    "feishu_sign",
    "link_target",
    "slack_payload",
    "ticket_link",
    "webhook_headers",
    "webhook_payload",
    "webhook_signature",
    "wecom_payload",
]
