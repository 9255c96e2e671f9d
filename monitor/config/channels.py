"""What a notification channel's settings must be: the one check of them.

The rules file loader checks each setting as written (a text still holding a
``${NAME}`` reference waits until it is resolved), and the notifier checks
the resolved settings at start-up, with these same functions. Error texts
never repeat a setting's value: it may hold a token or a password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from yarl import URL

from monitor.config.durations import parse_duration

CHANNEL_KINDS = (
    "webhook",
    "dingtalk",
    "feishu",
    "wecom",
    "slack",
    "email",
    "aliyun_sms",
    "http_sms",
)
#: Kinds that send SMS (see :mod:`monitor.sinks.notifiers.sms`).
SMS_CHANNEL_KINDS = frozenset({"aliyun_sms", "http_sms"})
#: Settings every SMS kind may have: recipients of its group notices
#: (``to``: mobiles; none means personal notices only), the cap of the text
#: and the per-recipient limit.
_SMS_OPTIONAL = frozenset({"to", "max_chars", "per_recipient_per_hour", "timeout"})

#: Keys per channel kind: (required, optional).
CHANNEL_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "webhook": (frozenset({"url"}), frozenset({"secret", "headers", "timeout"})),
    "dingtalk": (frozenset({"webhook"}), frozenset({"secret", "at_mobiles"})),
    "feishu": (frozenset({"webhook"}), frozenset({"secret"})),
    "wecom": (frozenset({"webhook"}), frozenset({"mentioned_list"})),
    "slack": (frozenset({"webhook"}), frozenset({"channel"})),
    "email": (
        frozenset({"smtp_host", "from", "to"}),
        frozenset({"smtp_port", "username", "password", "starttls", "use_tls"}),
    ),
    "aliyun_sms": (
        frozenset({"access_key_id", "access_key_secret", "sign_name", "template_code"}),
        _SMS_OPTIONAL | {"endpoint", "region_id", "template_params"},
    ),
    "http_sms": (frozenset({"url"}), _SMS_OPTIONAL | {"secret", "headers", "body"}),
}
#: Fields an SMS template variable or gateway body may be filled with.
SMS_FIELDS = ("text", "ticket", "priority", "kind", "topic", "rule", "owner")
#: A mobile number: digits, an optional leading ``+``.
MOBILE = re.compile(r"\+?[0-9]{5,15}")

_URLS = frozenset({"url", "webhook", "endpoint"})
_TEXT_LISTS = frozenset({"to", "at_mobiles", "mentioned_list"})
_FLAGS = frozenset({"starttls", "use_tls"})
#: SMTP login: both empty (or both absent) means the server takes mail
#: without one.
_LOGIN = frozenset({"username", "password"})


def check_channel_value(key: str, value: Any) -> Any:
    """Check one channel setting and return it normalised.

    Args:
        key: The setting's name (``url``, ``smtp_port``, ...).
        value: Its value, references resolved.

    Returns:
        URLs percent-encoded, lists of texts as lists, ``headers`` as a dict,
        ``smtp_port`` as an int, ``timeout`` in seconds; other texts as given.

    Raises:
        ValueError: Naming the setting and what is wrong, never its value.

    """
    if key in _URLS:
        return _http_url(value, key)
    if key in _TEXT_LISTS:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(
            isinstance(item, str) and item.strip() for item in items
        ):
            raise ValueError(f"{key} must be a list of texts")
        return list(items)
    if key == "headers":
        if not isinstance(value, Mapping) or not all(
            isinstance(name, str) and isinstance(text, str)
            for name, text in value.items()
        ):
            raise ValueError("headers must map names to texts")
        return dict(value)
    if key == "smtp_port":
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and value.isdigit())
        ):
            raise ValueError("smtp_port must be a number, >= 1 and <= 65535")
        if not 1 <= int(value) <= 65535:
            raise ValueError(f"smtp_port must be >= 1 and <= 65535, got {value}")
        return int(value)
    if key in _FLAGS:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        return value
    if key == "timeout":
        return parse_duration(value).total_seconds()
    if key == "max_chars":
        return _whole(key, value, 20, 500)
    if key == "per_recipient_per_hour":
        return _whole(key, value, 1, 3600)
    if key == "template_params":
        if (
            not isinstance(value, Mapping)
            or not value
            or not all(
                isinstance(name, str) and name.strip() and field in SMS_FIELDS
                for name, field in value.items()
            )
        ):
            raise ValueError(
                "template_params must map template variables to one of "
                + ", ".join(SMS_FIELDS)
            )
        return dict(value)
    if key == "body":
        if not isinstance(value, Mapping) or not value:
            raise ValueError("body must be a mapping (the JSON object to send)")
        return dict(value)
    if key in _LOGIN:
        # Empty (an unset ${ALERT_SMTP_USER}, say) means: no login.
        if not isinstance(value, str):
            raise ValueError(f"{key} must be text")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be non-empty text")
    return value


def check_channel_combination(kind: str, settings: Mapping[str, Any]) -> None:
    """Check the settings that go together (a value may still be a reference).

    Raises:
        ValueError: Naming the settings and what is wrong.

    """
    if kind in SMS_CHANNEL_KINDS:
        mobiles = settings.get("to") or []
        if "to" in settings and not mobiles:
            raise ValueError("to needs at least one mobile (or leave it out)")
        for mobile in mobiles:
            if isinstance(mobile, str) and "${" not in mobile:
                if not MOBILE.fullmatch(mobile.strip()):
                    raise ValueError("to must list mobile numbers (digits, +)")
        return
    if kind != "email":
        return
    if "to" in settings and not settings["to"]:
        raise ValueError("to needs at least one address")
    if settings.get("starttls") and settings.get("use_tls"):
        raise ValueError("use either starttls or use_tls, not both")
    if bool(settings.get("username")) != bool(settings.get("password")):
        raise ValueError("username and password go together")


def check_channel_settings(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Check a channel's resolved settings as a whole and normalise them.

    Args:
        kind: The channel kind, one of :data:`CHANNEL_KINDS`.
        settings: Settings with ``${NAME}`` references already replaced.

    Returns:
        A copy, each value as :func:`check_channel_value` returns it;
        ``headers`` of a webhook is always there (empty if not configured).

    Raises:
        ValueError: Naming the first bad setting.

    """
    if kind not in CHANNEL_KEYS:
        raise ValueError(f"unknown channel kind {kind!r}")
    required, optional = CHANNEL_KEYS[kind]
    missing = sorted(required - set(settings))
    if missing:
        raise ValueError(f"{kind} channel needs {missing[0]!r}")
    unknown = sorted(set(settings) - required - optional)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in a {kind} channel")
    checked = {
        key: value if value is None else check_channel_value(key, value)
        for key, value in settings.items()
    }
    check_channel_combination(kind, checked)
    if kind == "webhook":
        checked["headers"] = checked.get("headers") or {}
    return checked


def _whole(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    ):
        raise ValueError(f"{key} must be a whole number")
    if not low <= int(value) <= high:
        raise ValueError(f"{key} must be >= {low} and <= {high}, got {value}")
    return int(value)


def _http_url(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"{key} must be an http(s) URL")
    try:
        url = URL(value)
    except ValueError as exc:
        # The URL may carry the robot's token: say what is wrong, not the URL.
        reason = "" if value in str(exc) else f" ({exc})"
        raise ValueError(f"{key} is not a valid URL{reason}") from None
    if not url.host:
        raise ValueError(f"{key} has no host")
    return str(url)  # percent-encoded, so it can be sent as it is
