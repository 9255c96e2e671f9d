"""One-tap action links: tokens, keys, issuing rules and the chat payloads.

Pure: no event loop, no network. The signature is recomputed here from the
documented format, not with the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ConfigError
from monitor.settings import Settings
from monitor.sinks.notifiers import (
    build_message,
    dingtalk_payload,
    feishu_payload,
    slack_payload,
    wecom_payload,
)
from monitor.sinks.notifiers.messages import ActionLink, Message
from monitor.web.links import (
    ActionLinkConfigError,
    ActionLinkError,
    ActionLinkIssuer,
    ActionLinkKeys,
    Claims,
    ExpiredLink,
    ForgedLink,
    MalformedLink,
    UnknownKey,
    links_allowed,
)
from tests.unit.test_notifiers import make_ticket

NOW = datetime(2026, 11, 20, 5, 0, tzinfo=timezone.utc)
SECRET_1 = "s3cr3t-one-" + "a" * 32
SECRET_2 = "s3cr3t-two-" + "b" * 32
KEYS = ActionLinkKeys.parse(f"k2:{SECRET_2},k1:{SECRET_1}")
CONSOLE = "https://ops.example"


def issuer(
    keys: ActionLinkKeys = KEYS,
    console: str | None = CONSOLE,
    ttl: timedelta = timedelta(hours=1),
) -> ActionLinkIssuer:
    return ActionLinkIssuer(keys, console, ttl, clock=lambda: NOW)


def token_of(link: ActionLink) -> str:
    fragment = urlsplit(link.url).fragment
    assert fragment.startswith("t=")
    return fragment[2:]


def claims_json(token: str) -> dict[str, object]:
    body = token.split(".")[2]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


# --- tokens -------------------------------------------------------------------


def test_a_button_url_carries_the_token_in_the_fragment_and_verifies() -> None:
    ticket = make_ticket(revision=7)
    ack, start = issuer().buttons(ticket, "ops-dingtalk", "王工")

    assert (ack.action, ack.label) == ("acknowledge", "确认")
    assert (start.action, start.label) == ("start", "开始处理")
    parts = urlsplit(ack.url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "ops.example",
        "/console/a",
    )
    assert parts.query == ""
    token = token_of(ack)
    version, key_id, body, sig = token.split(".")
    assert (version, key_id) == ("v1", "k2")  # the first key signs
    expected = hmac.new(
        SECRET_2.encode(), f"v1.k2.{body}".encode(), hashlib.sha256
    ).digest()
    assert base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)) == expected
    claims = issuer().verify(token, NOW)
    assert claims == Claims(
        ticket_id=ticket.ticket_id,
        action="acknowledge",
        actor="王工",
        channel="ops-dingtalk",
        revision=7,
        expires_at=NOW + timedelta(hours=1),
        link_id=claims.link_id,
        key_id="k2",
    )
    assert claims.note == "via link issued to 王工 in ops-dingtalk"
    assert len(base64.urlsafe_b64decode(claims.link_id + "==")) == 16
    assert claims_json(token)["n"] == claims.link_id


def test_every_link_has_its_own_id() -> None:
    links = [issuer().buttons(make_ticket(), "c", "a")[0] for _ in range(20)]
    ids = {issuer().verify(token_of(link), NOW).link_id for link in links}
    assert len(ids) == 20


def test_a_group_card_link_is_issued_to_the_owner_or_the_group() -> None:
    owned = issuer().buttons(make_ticket(owner="李工"), "ops", None)[0]
    unowned = issuer().buttons(make_ticket(owner=None), "ops", None)[0]
    assert issuer().verify(token_of(owned), NOW).actor == "李工"
    assert issuer().verify(token_of(unowned), NOW).actor == "group:ops"


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_changing_any_byte_of_a_token_refuses_it(data: st.DataObject) -> None:
    token = token_of(issuer().buttons(make_ticket(), "ops", "王工")[0])
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(
        st.characters(codec="ascii").filter(lambda c: c != token[position])
    )
    tampered = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(ActionLinkError):
        issuer().verify(tampered, NOW)


@given(cut=st.integers(0, 200), extra=st.text(max_size=5))
def test_a_cut_or_extended_token_is_refused(cut: int, extra: str) -> None:
    token = token_of(issuer().buttons(make_ticket(), "ops", "王工")[0])
    changed = token[: len(token) - 1 - cut % len(token)] + extra
    if changed == token:
        return
    with pytest.raises(ActionLinkError):
        issuer().verify(changed, NOW)


def test_claims_re_signed_by_someone_else_are_forged() -> None:
    token = token_of(issuer().buttons(make_ticket(), "ops", "王工")[0])
    version, key_id, body, _ = token.split(".")
    claims = claims_json(token)
    claims["a"] = "start"
    claims["r"] = 99
    forged_body = (
        base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    )
    with pytest.raises(ForgedLink):
        issuer().verify(f"{version}.{key_id}.{forged_body}.{token.split('.')[3]}", NOW)


@pytest.mark.parametrize(
    "token",
    ["", "v1", "v1.k1.abc", "v2.k1.abc.def", "v1..abc.def", "v1.k1.a.b.c", "x" * 5000],
)
def test_garbage_is_malformed(token: str) -> None:
    with pytest.raises(MalformedLink) as caught:
        issuer().verify(token, NOW)
    assert caught.value.status == 400


def test_an_expired_link_is_refused_with_its_claims() -> None:
    token = token_of(issuer().buttons(make_ticket(), "ops", "王工")[0])
    issuer().verify(token, NOW + timedelta(minutes=59, seconds=59))
    with pytest.raises(ExpiredLink) as caught:
        issuer().verify(token, NOW + timedelta(hours=1))
    assert caught.value.status == 403
    assert caught.value.claims.ticket_id == "T-3f2a9c01de-1"
    assert "expired" in str(caught.value)


def test_the_lifetime_comes_from_the_issuer() -> None:
    short = issuer(ttl=timedelta(minutes=5))
    token = token_of(short.buttons(make_ticket(), "ops", "王工")[0])
    assert short.verify(token, NOW).expires_at == NOW + timedelta(minutes=5)
    with pytest.raises(ExpiredLink):
        short.verify(token, NOW + timedelta(minutes=5))


def test_an_unknown_key_id_is_refused() -> None:
    token = token_of(issuer().buttons(make_ticket(), "ops", "王工")[0])
    only_k1 = issuer(ActionLinkKeys.parse(f"k1:{SECRET_1}"))
    with pytest.raises(UnknownKey) as caught:
        only_k1.verify(token, NOW)
    assert caught.value.status == 403
    assert SECRET_1 not in str(caught.value) and SECRET_2 not in str(caught.value)


def test_a_rotated_out_signing_key_still_verifies_while_listed() -> None:
    old = issuer(ActionLinkKeys.parse(f"k1:{SECRET_1}"))
    token = token_of(old.buttons(make_ticket(), "ops", "王工")[0])
    rotated = issuer(ActionLinkKeys.parse(f"k2:{SECRET_2},k1:{SECRET_1}"))
    assert rotated.verify(token, NOW).key_id == "k1"
    new_token = token_of(rotated.buttons(make_ticket(), "ops", "王工")[0])
    assert new_token.split(".")[1] == "k2"
    with pytest.raises(UnknownKey):
        old.verify(new_token, NOW)


def test_same_key_id_with_another_secret_is_forged() -> None:
    token = token_of(issuer().buttons(make_ticket(), "ops", "王工")[0])
    other = issuer(ActionLinkKeys.parse("k2:" + "z" * 40))
    with pytest.raises(ForgedLink):
        other.verify(token, NOW)


# --- keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "k1",
        "k1:" + "x" * 31,
        "k1:" + "x" * 40 + ",k2:short",
        ":" + "x" * 40,
        "bad id:" + "x" * 40,
        "k1:" + "x" * 40 + ",k1:" + "y" * 40,
        "k1:" + "x" * 20 + " " + "x" * 20,
    ],
)
def test_bad_key_specs_are_refused_without_showing_the_secret(spec: str) -> None:
    with pytest.raises(ActionLinkConfigError) as caught:
        ActionLinkKeys.parse(spec)
    message = str(caught.value)
    for secret in ("x" * 20, "y" * 20, "short"):
        assert secret not in message


def test_a_32_byte_secret_is_enough_and_multibyte_counts_bytes() -> None:
    assert ActionLinkKeys.parse("k1:" + "x" * 32).ids == ("k1",)
    assert ActionLinkKeys.parse("k1:" + "密" * 11).ids == ("k1",)  # 33 bytes
    with pytest.raises(ActionLinkConfigError):
        ActionLinkKeys.parse("k1:" + "密" * 10)  # 30 bytes


def test_keys_and_issuer_never_show_their_secrets() -> None:
    shown = repr(KEYS) + str(KEYS) + repr(issuer())
    assert SECRET_1 not in shown and SECRET_2 not in shown
    assert "k1" in shown and "k2" in shown


def test_settings_read_keys_and_lifetime_and_hide_the_keys() -> None:
    spec = f"k1:{SECRET_1}"
    loaded = Settings.load(
        env={
            "MONITOR_ACTION_LINK_KEYS": spec,
            "MONITOR_ACTION_LINK_TTL_SECONDS": "30m",
            "MONITOR_CONSOLE_URL": CONSOLE,
        }
    )
    assert loaded.action_link_keys == spec
    assert loaded.action_link_ttl_seconds == 1800
    assert SECRET_1 not in repr(loaded) and SECRET_1 not in str(loaded)
    built = ActionLinkIssuer.from_settings(loaded, clock=lambda: NOW)
    assert built is not None and built.ttl == timedelta(minutes=30)
    assert Settings().action_link_ttl_seconds == 3600
    assert Settings().action_link_keys is None
    assert ActionLinkIssuer.from_settings(Settings()) is None
    with pytest.raises(ConfigError) as caught:
        Settings.load(env={"MONITOR_ACTION_LINK_KEYS": "k1:tooshort-secret"})
    assert "tooshort" not in str(caught.value)
    assert "32 bytes" in str(caught.value)


# --- when links are issued ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://ops.example",
        "https://ops.example/base/",
        "http://127.0.0.1:6066",
        "http://localhost:6066",
        "http://[::1]:6066",
    ],
)
def test_links_are_issued_for_https_and_loopback_consoles(url: str) -> None:
    assert links_allowed(url)
    (ack, _) = issuer(console=url).buttons(make_ticket(), "ops", "王工")
    assert ack.url.startswith(url.rstrip("/") + "/console/a#t=v1.")


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "http://ops.example",
        "http://10.0.0.5:6066",
        "http://127.0.0.1.evil.example",
        "ftp://ops.example",
        "https://user@ops.example",
        "javascript:alert(1)",
    ],
)
def test_no_links_for_plain_http_or_odd_consoles(url: str | None) -> None:
    assert not links_allowed(url)
    assert issuer(console=url).buttons(make_ticket(), "ops", "王工") == ()


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        ("open", ("acknowledge", "start")),
        ("acknowledged", ("start",)),
        ("in_progress", ()),
        ("resolved", ()),
        ("closed", ()),
    ],
)
def test_buttons_follow_what_the_status_allows(
    status: str, actions: tuple[str, ...]
) -> None:
    links = issuer().buttons(make_ticket(status=status), "ops", "王工")
    assert tuple(link.action for link in links) == actions


def test_only_acknowledge_and_start_can_be_issued() -> None:
    with pytest.raises(ValueError, match="cannot"):
        issuer().issue(make_ticket(), "close", "ops", "王工")


# --- payloads -----------------------------------------------------------------


def message_with_actions(
    **ticket_changes: object,
) -> tuple[Message, tuple[ActionLink, ...]]:
    ticket = make_ticket(**ticket_changes)
    actions = issuer().buttons(ticket, "ops-dingtalk", "王工")
    message = build_message(ticket, "opened", console_url=CONSOLE)
    return replace(message, actions=actions), actions


def test_dingtalk_sends_an_action_card_with_a_button_per_action() -> None:
    message, actions = message_with_actions()
    payload = dingtalk_payload(message)

    assert payload["msgtype"] == "actionCard"
    card = payload["actionCard"]
    assert card["btns"] == [
        {"title": "确认", "actionURL": actions[0].url},
        {"title": "开始处理", "actionURL": actions[1].url},
    ]
    assert card["btnOrientation"] in ("0", "1")
    assert card["title"].startswith("[P2] 新工单")
    assert (
        "[查看工单](https://ops.example/console/tickets/T-3f2a9c01de-1)" in card["text"]
    )
    # The post's markup stays defused in the card text.
    assert "[点我](http" not in card["text"] and "<b>" not in card["text"]
    assert "‹b›" in card["text"]


def test_dingtalk_with_mentions_stays_markdown_with_the_links_in_the_text() -> None:
    message, actions = message_with_actions()
    payload = dingtalk_payload(message, at_mobiles=["13800000000"])
    assert payload["msgtype"] == "markdown"
    assert f"[确认]({actions[0].url})" in payload["markdown"]["text"]
    assert payload["at"]["atMobiles"] == ["13800000000"]


def test_feishu_sends_an_interactive_card_with_url_buttons() -> None:
    message, actions = message_with_actions()
    payload = feishu_payload(message, secret="fs-secret", timestamp=1_700_000_000)

    assert payload["msg_type"] == "interactive"
    assert "sign" in payload and payload["timestamp"] == "1700000000"
    card = payload["card"]
    assert card["header"]["title"]["tag"] == "plain_text"
    buttons = [
        b for e in card["elements"] if e["tag"] == "action" for b in e["actions"]
    ]
    by_label = {b["text"]["content"]: b for b in buttons}
    assert by_label["确认"]["url"] == actions[0].url
    assert by_label["确认"]["type"] == "primary"
    assert by_label["开始处理"]["url"] == actions[1].url
    assert (
        by_label["查看工单"]["url"]
        == "https://ops.example/console/tickets/T-3f2a9c01de-1"
    )
    assert by_label["原帖 1"]["url"] == "https://weibo.example/p1"
    # Every text is plain_text: no lark_md that could render a post's markup.
    texts = [e["text"] for e in card["elements"] if e["tag"] == "div"]
    assert texts and all(t["tag"] == "plain_text" for t in texts)
    assert "lark_md" not in json.dumps(card)


def test_wecom_sends_a_text_notice_card_with_jump_links() -> None:
    message, actions = message_with_actions()
    payload = wecom_payload(message)

    assert payload["msgtype"] == "template_card"
    card = payload["template_card"]
    assert card["card_type"] == "text_notice"
    assert card["jump_list"] == [
        {"type": 1, "url": actions[0].url, "title": "确认"},
        {"type": 1, "url": actions[1].url, "title": "开始处理"},
        {
            "type": 1,
            "url": "https://ops.example/console/tickets/T-3f2a9c01de-1",
            "title": "查看工单",
        },
    ]
    assert card["card_action"] == {
        "type": 1,
        "url": "https://ops.example/console/tickets/T-3f2a9c01de-1",
    }
    assert len(card["main_title"]["title"]) <= 26
    assert len(card["sub_title_text"]) <= 112
    assert 1 <= len(card["horizontal_content_list"]) <= 6
    for row in card["horizontal_content_list"]:
        assert len(row["keyname"]) <= 5 and len(row["value"]) <= 26


def test_wecom_with_mentions_stays_markdown() -> None:
    message, actions = message_with_actions()
    payload = wecom_payload(message, mentioned_list=["wanggong"])
    assert payload["msgtype"] == "markdown"
    content = payload["markdown"]["content"]
    assert f"[确认]({actions[0].url})" in content and content.endswith("<@wanggong>")


def test_slack_gets_link_buttons() -> None:
    message, actions = message_with_actions()
    payload = slack_payload(message)
    (block,) = [b for b in payload["blocks"] if b["type"] == "actions"]
    assert [e["url"] for e in block["elements"]] == [a.url for a in actions]


def test_without_actions_the_payloads_are_as_before() -> None:
    message = build_message(make_ticket(), "opened", console_url=CONSOLE)
    assert dingtalk_payload(message)["msgtype"] == "markdown"
    assert feishu_payload(message)["msg_type"] == "post"
    assert wecom_payload(message)["msgtype"] == "markdown"


HOSTILE = st.lists(
    st.sampled_from([*"[]()<>*_`~#|\\&@:/ \n\"'", "http://x.y", "a"]), max_size=20
).map("".join)


@settings(max_examples=100, deadline=None)
@given(excerpt=HOSTILE, topic=HOSTILE, label=HOSTILE)
def test_hostile_text_forges_no_link_in_any_card(
    excerpt: str, topic: str, label: str
) -> None:
    from monitor.analysis.tickets.model import Evidence

    ticket = make_ticket(
        topic=topic or "t",
        evidence=(Evidence("p1", excerpt or "x", url="javascript:alert(1)"),),
    )
    actions = (
        ActionLink(
            "acknowledge", label or "确认", "https://ops.example/console/a#t=v1.k.a.b"
        ),
        ActionLink("start", "开始", "javascript:alert(1)"),
    )
    message = replace(
        build_message(ticket, "opened", console_url=CONSOLE), actions=actions
    )
    ding = dingtalk_payload(message)["actionCard"]
    # Only our own URLs are buttons; the javascript: one is left out.
    assert [b["actionURL"] for b in ding["btns"]] == [actions[0].url]
    # The card text links only the console page.
    assert ding["text"].count("](") == 1
    assert "http://x.y" not in ding["text"]
    feishu = feishu_payload(message)["card"]
    urls = [
        b["url"]
        for e in feishu["elements"]
        if e["tag"] == "action"
        for b in e["actions"]
    ]
    assert urls == [
        actions[0].url,
        "https://ops.example/console/tickets/T-3f2a9c01de-1",
    ]
    assert "http://x.y" not in json.dumps(feishu, ensure_ascii=False)
    wecom = wecom_payload(message)["template_card"]
    assert [j["url"] for j in wecom["jump_list"]] == urls
    assert "http://x.y" not in json.dumps(wecom, ensure_ascii=False)
    html = message.html
    assert "javascript:" not in html and "<b>" not in html
