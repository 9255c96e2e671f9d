"""Channel settings have one check: the rules loader and the notifier share it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.config.channels import check_channel_settings, check_channel_value
from monitor.config.rules import Channel, load_rules
from monitor.errors import ConfigError
from monitor.sinks.notifiers import Notifier


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("url", "https://h.example/a b", "https://h.example/a%20b"),
        ("to", "a@b", ["a@b"]),
        ("at_mobiles", ("138",), ["138"]),
        ("headers", {"X-A": "1"}, {"X-A": "1"}),
        ("smtp_port", "587", 587),
        ("smtp_port", 25, 25),
        ("use_tls", True, True),
        ("timeout", "10s", 10.0),
        ("secret", "s", "s"),
    ],
)
def test_check_channel_value_normalises(key: str, value: Any, expected: Any) -> None:
    assert check_channel_value(key, value) == expected


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("url", "ftp://tok-123", "must be an http"),
        ("webhook", ["https://x/tok-123"], "must be an http"),
        ("to", ["a@b", ""], "list of texts"),
        ("headers", {"Authorization": 8675309}, "map names to texts"),
        ("smtp_port", "smtp", "must be a number"),
        ("smtp_port", True, "must be a number"),
        ("smtp_port", 70000, ">= 1 and <= 65535"),
        ("starttls", "yes", "true or false"),
        ("timeout", "soon", "bad duration"),
        ("password", ["pw-123"], "must be text"),
    ],
)
def test_check_channel_value_refuses_without_echoing(
    key: str, value: Any, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        check_channel_value(key, value)
    assert "tok-123" not in str(caught.value) and "pw-123" not in str(caught.value)
    assert "8675309" not in str(caught.value)


EMAIL = {"smtp_host": "h", "from": "a@b", "to": ["c@d"]}


def test_an_empty_smtp_login_means_none() -> None:
    # The example rules read ${ALERT_SMTP_USER}: unset, the server needs no login.
    checked = check_channel_settings(
        "email", {**EMAIL, "username": "", "password": ""}
    )
    assert (checked["username"], checked["password"]) == ("", "")


@pytest.mark.parametrize(
    ("kind", "settings", "reason"),
    [
        ("email", {**EMAIL, "to": []}, "at least one"),
        ("email", {**EMAIL, "username": "u"}, "go together"),
        ("email", {**EMAIL, "starttls": True, "use_tls": True}, "not both"),
        ("email", {"smtp_host": "h", "from": "a@b"}, "needs 'to'"),
        ("webhook", {"url": "https://x", "token": "t"}, "unknown key 'token'"),
        ("pager", {}, "unknown channel kind"),
    ],
)
def test_check_channel_settings_refuses(
    kind: str, settings: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        check_channel_settings(kind, settings)


RULES = """\
topics:
  停车:
    keywords: [停车]
teams:
  ops:
    members: [值班]
channels:
  mail: {kind: email, smtp_host: h, from: a@b, SETTING}
routing:
  default_team: ops
"""


@pytest.mark.parametrize(
    ("setting", "settings", "reason"),
    [
        ("to: []", {"to": []}, "to needs at least one address"),
        (
            "to: [c@d], username: u",
            {"to": ["c@d"], "username": "u"},
            "username and password go together",
        ),
        (
            "to: [c@d], smtp_port: '70000'",
            {"to": ["c@d"], "smtp_port": "70000"},
            "smtp_port must be >= 1 and <= 65535",
        ),
    ],
)
def test_the_rules_file_and_the_notifier_refuse_alike(
    tmp_path: Path, setting: str, settings: dict[str, Any], reason: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("SETTING", setting), encoding="utf-8")
    with pytest.raises(ConfigError, match=reason):
        load_rules(path)
    channel = Channel("mail", "email", {"smtp_host": "h", "from": "a@b", **settings})
    with pytest.raises(ConfigError, match=reason):
        Notifier({"mail": channel}, {})
