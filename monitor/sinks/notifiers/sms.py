"""SMS notices: the text, Alibaba Cloud ``SendSms`` signing, a generic HTTP gateway.

Pure functions (time and nonce are passed in); :mod:`.notifier` sends what
they build.

Two channel kinds send SMS (:data:`SMS_KINDS`):

- ``aliyun_sms``: Alibaba Cloud SMS ``SendSms`` (API version 2017-05-25), an
  RPC-style API, POSTed as a form to ``https://dysmsapi.aliyuncs.com/`` (the
  ``endpoint`` setting overrides it, for tests) and signed with the RPC
  signature method (``SignatureVersion`` 1.0, ``HMAC-SHA1``) as documented in
  "Signature method", https://www.alibabacloud.com/help/en/short-message-service/latest/signature-method
  (and "Request syntax and signature method V2 for RPC APIs",
  https://www.alibabacloud.com/help/en/sdk/product-overview/rpc-mechanism):

  1. every parameter but ``Signature``, sorted by name, name and value each
     percent-encoded (UTF-8; ``A-Z a-z 0-9 - _ . ~`` kept, everything else
     ``%XY`` upper case, a space ``%20``), joined ``name=value`` with ``&``:
     the canonicalized query string;
  2. ``StringToSign = HTTPMethod + "&" + percentEncode("/") + "&" +
     percentEncode(canonicalized query string)``;
  3. ``Signature = base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))``.

  The reply is JSON; ``Code == "OK"`` means it was accepted. Throttling
  (``isv.BUSINESS_LIMIT_CONTROL``, ``Throttling.User``...) and system errors
  are retried; any other code is refused for good. A template's variables
  are filled from ``template_params`` (``{variable: field}``, fields in
  :data:`TEMPLATE_FIELDS`; default ``{content: text}``).

- ``http_sms``: any HTTP gateway. The JSON body is the ``body`` setting (a
  mapping, default ``{"mobile": "{mobile}", "text": "{text}"}``) with
  ``{mobile}``, ``{text}``, ``{ticket}``, ``{priority}`` and ``{delivery_id}``
  replaced in its texts (plain replacement, so braces in the text are
  harmless); with a ``secret`` it is signed like the webhook channel:
  ``X-Monitor-Timestamp`` and ``X-Monitor-Signature: sha256=<hex
  HMAC-SHA256(secret, f"{timestamp}.{body}")>``, and every request carries
  ``X-Monitor-Delivery``. A 2xx reply is accepted; 408, 429 and 5xx are
  retried.

Length: one SMS segment holds 70 Chinese (UCS-2) characters, a longer
message is split into segments of 67. A notice's text is capped at
:data:`DEFAULT_MAX_CHARS` (201 characters: three segments; ``max_chars``
changes it, 20 to 500), cut with ``…``. The text has no markup: control and
format characters are dropped and whitespace runs become one space.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from monitor.sinks.notifiers.payloads import (
    DeliveryError,
    encode_json,
    webhook_signature,
)

#: Channel kinds that send SMS.
SMS_KINDS = frozenset({"aliyun_sms", "http_sms"})
ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
ALIYUN_VERSION = "2017-05-25"
#: Characters of one Chinese (UCS-2) SMS segment.
SEGMENT_CHARS = 70
#: Characters of each segment of a long (concatenated) SMS.
LONG_SEGMENT_CHARS = 67
#: Default cap of a notice's text: three long segments.
DEFAULT_MAX_CHARS = 3 * LONG_SEGMENT_CHARS
MIN_MAX_CHARS, MAX_MAX_CHARS = 20, 500
#: Default SMS a recipient gets at most per hour from one channel.
DEFAULT_PER_RECIPIENT_PER_HOUR = 6
#: What a template variable or a gateway body may be filled with.
TEMPLATE_FIELDS = ("text", "ticket", "priority", "kind", "topic", "rule", "owner")
DEFAULT_TEMPLATE_PARAMS = {"content": "text"}
DEFAULT_GATEWAY_BODY = {"mobile": "{mobile}", "text": "{text}"}
#: Alibaba Cloud codes worth retrying (throttling, system busy).
ALIYUN_RETRYABLE = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",
        "isp.SYSTEM_ERROR",
        "isp.RAM_PERMISSION_DENY_TEMPORARY",
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "ServiceUnavailable",
        "InternalError",
    }
)
MOBILE = re.compile(r"\+?[0-9]{5,15}")

_UNRESERVED = "-_.~"
_SPACES = re.compile(r"\s+")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


# --- text ---------------------------------------------------------------------


def clean_text(text: str) -> str:
    """Return ``text`` on one line: control/format characters out, spaces collapsed."""
    kept = "".join(
        " " if char in "\t\n\r\v\f\u2028\u2029" else char
        for char in text
        if char in "\t\n\r\v\f\u2028\u2029"
        or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    return _SPACES.sub(" ", kept).strip()


def cap_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Return ``text`` cleaned, cut to ``max_chars`` characters (``…`` marks a cut)."""
    text = clean_text(text)
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rstrip() + "…"


def segments(text: str) -> int:
    """Return the SMS segments ``text`` takes as a Chinese (UCS-2) message."""
    if len(text) <= SEGMENT_CHARS:
        return 1
    return -(-len(text) // LONG_SEGMENT_CHARS)


def sms_text(
    title: str,
    owner: str | None,
    link: str | None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> str:
    """Return a notice as one SMS: title, owner, console link; within ``max_chars``.

    The link goes last and is kept whole when there is room (it is what the
    reader taps); the title is cut first.
    """
    tail = f" 负责人:{clean_text(owner)}" if owner else ""
    if link and len(link) + 1 < max_chars // 2:
        tail += f" {link}"
    head = cap_text(title, max(1, max_chars - len(tail)))
    return cap_text(head + tail, max_chars)


def fields_of(
    text: str,
    ticket_id: str,
    priority: str,
    kind: str,
    topic: str,
    rule: str,
    owner: str | None,
) -> dict[str, str]:
    """Return the values :data:`TEMPLATE_FIELDS` name, each cleaned."""
    values = {
        "text": text,
        "ticket": ticket_id,
        "priority": priority,
        "kind": kind,
        "topic": topic,
        "rule": rule,
        "owner": owner or "",
    }
    return {key: clean_text(value) for key, value in values.items()}


# --- Alibaba Cloud SendSms ----------------------------------------------------------


def percent_encode(value: str) -> str:
    """Percent-encode as the RPC signature specifies (RFC 3986, UTF-8, ``%20``)."""
    return quote(value.encode("utf-8"), safe=_UNRESERVED)


def canonicalized_query(params: Mapping[str, str]) -> str:
    """Return the sorted, encoded ``name=value&...`` of all but ``Signature``."""
    return "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}"
        for name in sorted(params)
        if name != "Signature"
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """Return ``METHOD&%2F&percentEncode(canonicalized query)``."""
    return (
        f"{method.upper()}&{percent_encode('/')}&"
        f"{percent_encode(canonicalized_query(params))}"
    )


def aliyun_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    """Return ``base64(HMAC-SHA1(secret + "&", StringToSign))``."""
    digest = hmac.new(
        f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def aliyun_timestamp(now: float) -> str:
    """Return unix seconds as the API's ``Timestamp`` (ISO 8601, UTC, ``Z``)."""
    return datetime.fromtimestamp(int(now), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def aliyun_params(
    settings: Mapping[str, Any],
    mobile: str,
    fields: Mapping[str, str],
    *,
    now: float,
    nonce: str,
    out_id: str = "",
) -> dict[str, str]:
    """Return the ``SendSms`` parameters, without the signature.

    Args:
        settings: The channel's checked settings (``access_key_id``,
            ``sign_name``, ``template_code``, optional ``template_params``
            and ``region_id``).
        mobile: The one recipient.
        fields: Values of :data:`TEMPLATE_FIELDS` (:func:`fields_of`).
        now: Unix seconds (``Timestamp``).
        nonce: ``SignatureNonce``, new on every request.
        out_id: ``OutId``, returned in delivery receipts (the delivery id).

    """
    mapping = settings.get("template_params") or DEFAULT_TEMPLATE_PARAMS
    template_param = {name: fields.get(field, "") for name, field in mapping.items()}
    params = {
        "AccessKeyId": settings["access_key_id"],
        "Action": "SendSms",
        "Format": "JSON",
        "PhoneNumbers": mobile,
        "RegionId": settings.get("region_id") or "cn-hangzhou",
        "SignName": settings["sign_name"],
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce,
        "SignatureVersion": "1.0",
        "TemplateCode": settings["template_code"],
        "TemplateParam": json.dumps(
            template_param, ensure_ascii=False, separators=(",", ":")
        ),
        "Timestamp": aliyun_timestamp(now),
        "Version": ALIYUN_VERSION,
    }
    if out_id:
        params["OutId"] = out_id[:256]
    return params


def aliyun_request(
    settings: Mapping[str, Any],
    mobile: str,
    fields: Mapping[str, str],
    *,
    now: float,
    nonce: str,
    out_id: str = "",
) -> tuple[str, bytes, dict[str, str]]:
    """Return URL, form body and headers of one signed ``SendSms`` POST."""
    params = aliyun_params(
        settings, mobile, fields, now=now, nonce=nonce, out_id=out_id
    )
    signature = aliyun_signature(settings["access_key_secret"], "POST", params)
    body = canonicalized_query(params) + "&Signature=" + percent_encode(signature)
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    return settings.get("endpoint") or ALIYUN_ENDPOINT, body.encode(), headers


def check_aliyun_reply(status: int, body: str) -> None:
    """Accept a reply whose JSON ``Code`` is ``OK``.

    Raises:
        DeliveryError: Retryable for HTTP 429/5xx and :data:`ALIYUN_RETRYABLE`
            codes; permanent otherwise. The text names the code and message
            only (never the request).

    """
    try:
        reply = json.loads(body)
    except ValueError:
        reply = None
    code = str(reply.get("Code", "")) if isinstance(reply, dict) else ""
    message = str(reply.get("Message", ""))[:200] if isinstance(reply, dict) else ""
    if code == "OK" and 200 <= status < 300:
        return
    if code:
        raise DeliveryError(
            f"Alibaba Cloud SMS {code}: {message}",
            retryable=code in ALIYUN_RETRYABLE or code.startswith("Throttling"),
        )
    retryable = status in (408, 429) or status >= 500
    raise DeliveryError(
        f"Alibaba Cloud SMS: HTTP {status}, no Code in the reply", retryable=retryable
    )


# --- generic HTTP gateway -------------------------------------------------------------


def gateway_body(template: Any, values: Mapping[str, str]) -> Any:
    """Fill ``{name}`` placeholders in every text of a JSON template."""
    if isinstance(template, str):
        # One pass: a placeholder inside a filled-in value stays as it is.
        return _PLACEHOLDER.sub(
            lambda match: values.get(match.group(1), match.group(0)), template
        )
    if isinstance(template, Mapping):
        return {key: gateway_body(item, values) for key, item in template.items()}
    if isinstance(template, list | tuple):
        return [gateway_body(item, values) for item in template]
    return template


def gateway_request(
    settings: Mapping[str, Any],
    mobile: str,
    fields: Mapping[str, str],
    *,
    now: float,
    delivery_id: str,
) -> tuple[str, bytes, dict[str, str]]:
    """Return URL, JSON body and headers of one gateway POST (signed with a secret)."""
    values = {**fields, "mobile": mobile, "delivery_id": delivery_id}
    body = encode_json(
        gateway_body(settings.get("body") or DEFAULT_GATEWAY_BODY, values)
    )
    headers = dict(settings.get("headers") or {})
    headers["Content-Type"] = "application/json; charset=utf-8"
    headers["X-Monitor-Delivery"] = delivery_id
    secret = settings.get("secret")
    if secret:
        headers["X-Monitor-Timestamp"] = str(int(now))
        headers["X-Monitor-Signature"] = webhook_signature(secret, int(now), body)
    return settings["url"], body, headers


def check_gateway_reply(status: int, body: str) -> None:
    """Accept any 2xx; retry 408, 429 and 5xx; refuse the rest for good."""
    if 200 <= status < 300:
        return
    retryable = status in (408, 429) or status >= 500
    raise DeliveryError(
        f"SMS gateway HTTP {status}: {clean_text(body)[:200]}", retryable=retryable
    )


def mask_mobile(mobile: str) -> str:
    """Return a mobile for logs: ``138****5678``."""
    if len(mobile) <= 7:
        return "*" * len(mobile)
    return mobile[:3] + "*" * (len(mobile) - 7) + mobile[-4:]
