"""Notification messages, channel payloads, signatures, replies, rate limit.

Pure functions only: no event loop, no network. Signatures are recomputed
here from the vendors' documented formulas, not with the code under test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from dataclasses import fields, replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.analysis.tickets.model import Evidence, Ticket, TicketEvent
from monitor.config.rules import Channel, load_rules
from monitor.errors import ConfigError, InvalidRecordError
from monitor.records import parse_post
from monitor.sinks.notifiers import (
    NOTIFY_KINDS,
    DeliveryError,
    Notifier,
    TokenBucket,
    build_message,
    check_reply,
    dingtalk_payload,
    dingtalk_url,
    email_bytes,
    email_message,
    encode_json,
    feishu_payload,
    link_target,
    slack_payload,
    webhook_headers,
    webhook_payload,
    wecom_payload,
)

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 20, 13, 0, tzinfo=CST)
EXAMPLE_RULES = Path(__file__).parents[2] / "examples" / "rules.yaml"

EVIDENCE = (
    Evidence(
        "p1",
        "空调有股怪味，熏得头疼",
        followers=120_000,
        author="小王",
        url="https://weibo.example/p1",
    ),
    Evidence(
        "p2",
        "三楼 [点我](http://evil.example) <b>异味</b> & 很重",
        author="路人",
        url="https://weibo.example/p2",
    ),
    Evidence("p3", "换气系统是不是坏了\n  大家注意"),
    Evidence("p4", "第四条不该出现", url="https://weibo.example/p4"),
)


def make_ticket(**changes: Any) -> Ticket:
    """A P2 negative-volume ticket with four evidence posts."""
    ticket = Ticket(
        ticket_id="T-3f2a9c01de-1",
        fingerprint="fp-3f2a9c01de",
        sequence=1,
        status="open",
        priority="P2",
        priority_reason="超过阈值 2.3 倍；作者粉丝 12 万",
        topic="空调异味",
        rule="负面声量",
        kind="negative_volume",
        keyword=None,
        team="facilities",
        owner="王工",
        occurrences=3,
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=10),
        opened_at=T0 + timedelta(minutes=5),
        ack_due=T0 + timedelta(minutes=20),
        resolve_due=T0 + timedelta(hours=2),
        threshold=10,
        opening_value=18,
        growth_reference=18,
        peak_value=23,
        expected_value=4.2,
        evidence=EVIDENCE,
        keywords=("空调", "异味"),
        sla_breaches=frozenset({"ack@2026-11-20T13:20:00+08:00"}),
        delivery={"ops-webhook": "sent"},
        channels=("ops-webhook",),
    )
    return replace(ticket, **changes)


EVENT = TicketEvent(
    ticket_id="T-3f2a9c01de-1",
    event_id="T-3f2a9c01de-1#4",
    at=T0 + timedelta(minutes=30),
    actor="张经理",
    action="escalate",
    from_status="open",
    to_status="open",
    note="确认超时，升级",
    details={"to_priority": "P1"},
)


# --- the neutral message ------------------------------------------------------


def test_message_states_the_facts_on_call_staff_need() -> None:
    text = build_message(
        make_ticket(), "opened", console_url="https://ops.example"
    ).text

    for fact in [
        "T-3f2a9c01de-1",
        "P2",
        "超过阈值 2.3 倍；作者粉丝 12 万",
        "待处理",
        "新工单",
        "空调异味",
        "负面声量",
        "峰值 23（开单时 18）",
        "阈值：10",
        "基线：4.2",
        "王工（facilities）",
        "触发次数：3",
        "确认期限：2026-11-20 13:20+08:00",
        "解决期限：2026-11-20 15:00+08:00",
        "https://ops.example/console/tickets/T-3f2a9c01de-1",
    ]:
        assert fact in text, fact


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("opened", "新工单"),
        ("reopened", "重新打开"),
        ("escalated", "升级"),
        ("acknowledged", "已确认"),
        ("resolved", "已解决"),
    ],
)
def test_title_reads_priority_kind_id_topic_and_rule(kind: str, label: str) -> None:
    message = build_message(make_ticket(), kind)

    assert message.title == f"[P2] {label} T-3f2a9c01de-1 空调异味 负面声量"


def test_message_shows_at_most_three_evidence_posts_with_their_links() -> None:
    message = build_message(make_ticket(), "opened")

    assert [url for _, url in message.evidence] == [
        "https://weibo.example/p1",
        "https://weibo.example/p2",
        None,
    ]
    assert message.evidence[0][0] == "@小王：空调有股怪味，熏得头疼"
    assert message.evidence[2][0] == "换气系统是不是坏了 大家注意"
    assert "第四条" not in message.text
    assert "https://weibo.example/p1" in message.text


def test_long_excerpts_are_cut() -> None:
    post = Evidence("p9", "很" * 500, url="https://weibo.example/p9")
    message = build_message(make_ticket(evidence=(post,)), "opened")

    excerpt = message.evidence[0][0]
    assert len(excerpt) == 120 and excerpt.endswith("…")


@pytest.mark.parametrize("console_url", ["https://ops.example", "https://ops.example/"])
def test_console_link_points_at_the_console_ticket_page(console_url: str) -> None:
    message = build_message(make_ticket(), "opened", console_url=console_url)

    assert message.link == "https://ops.example/console/tickets/T-3f2a9c01de-1"


def test_no_console_url_means_no_link() -> None:
    message = build_message(make_ticket(), "opened")

    assert message.link is None
    assert "/tickets/" not in message.text + message.markdown + message.html


def test_share_rules_read_as_percent_and_keyword_is_shown() -> None:
    ticket = make_ticket(
        kind="negative_share",
        keyword="异味",
        threshold=0.8,
        opening_value=0.85,
        peak_value=0.85,
        expected_value=None,
    )

    facts = dict(build_message(ticket, "opened").facts)

    assert facts["观测值"] == "峰值 85%"
    assert facts["阈值"] == "80%"
    assert facts["关键词"] == "异味"
    assert "基线" not in facts


def test_later_notifications_show_event_and_times() -> None:
    ticket = make_ticket(
        status="resolved",
        owner=None,
        escalation_level=1,
        escalation_contact="张经理",
        acknowledged_at=T0 + timedelta(minutes=12),
        resolved_at=T0 + timedelta(minutes=50),
    )

    facts = dict(build_message(ticket, "resolved", EVENT).facts)

    assert facts["状态"] == "已解决"
    assert facts["负责人"] == "未分配（facilities）"
    assert facts["升级"] == "第 1 级：张经理"
    assert facts["确认时间"] == "2026-11-20 13:12+08:00"
    assert facts["解决时间"] == "2026-11-20 13:50+08:00"
    assert facts["操作"] == "张经理 escalate：确认超时，升级"


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="folded"):
        build_message(make_ticket(), "folded")


def test_post_text_cannot_forge_links_or_tags() -> None:
    message = build_message(make_ticket(), "opened")

    assert "](http://evil.example)" not in message.markdown
    assert "<b>" not in message.markdown
    assert "<b>" not in message.html
    assert "&lt;b&gt;异味&lt;/b&gt; &amp; 很重" in message.html


# --- webhook ------------------------------------------------------------------


def test_webhook_payload_carries_the_whole_ticket_and_event() -> None:
    sent_at = datetime(2026, 11, 20, 5, 31, tzinfo=timezone.utc)

    body = encode_json(
        webhook_payload(make_ticket(), "escalated", EVENT, sent_at=sent_at)
    )
    payload = json.loads(body)

    assert payload["kind"] == "escalated"
    assert payload["sent_at"] == "2026-11-20T05:31:00+00:00"
    assert set(payload["ticket"]) == {field.name for field in fields(Ticket)}
    assert payload["ticket"]["ack_due"] == "2026-11-20T13:20:00+08:00"
    assert payload["ticket"]["sla_breaches"] == ["ack@2026-11-20T13:20:00+08:00"]
    assert payload["ticket"]["evidence"][0]["url"] == "https://weibo.example/p1"
    assert payload["event"]["details"] == {"to_priority": "P1"}
    assert payload["event"]["at"] == "2026-11-20T13:30:00+08:00"
    assert "空调异味" in body.decode()  # UTF-8, not \\u escapes


def test_webhook_payload_without_event_has_null() -> None:
    payload = webhook_payload(make_ticket(), "opened", None, sent_at=T0)

    assert payload["event"] is None


def test_webhook_headers_are_signed_over_timestamp_and_body() -> None:
    body = b'{"kind":"opened"}'

    headers = webhook_headers(
        body,
        delivery_id="d-1",
        timestamp=1763614800,
        secret="s3cret",
        extra={"Authorization": "Bearer x", "X-Monitor-Delivery": "forged"},
    )

    expected = hmac.new(
        b"s3cret", b'1763614800.{"kind":"opened"}', hashlib.sha256
    ).hexdigest()
    assert headers["X-Monitor-Signature"] == f"sha256={expected}"
    assert headers["X-Monitor-Timestamp"] == "1763614800"
    assert headers["X-Monitor-Delivery"] == "d-1"
    assert headers["Authorization"] == "Bearer x"
    assert headers["Content-Type"].startswith("application/json")


def test_webhook_without_secret_is_not_signed() -> None:
    headers = webhook_headers(b"{}", delivery_id="d-1", timestamp=1, secret=None)

    assert "X-Monitor-Signature" not in headers
    assert "X-Monitor-Timestamp" not in headers


@given(
    secret=st.text(min_size=1),
    body=st.binary(),
    timestamp=st.integers(min_value=0, max_value=2**40),
)
def test_webhook_signature_verifies_for_any_secret_and_body(
    secret: str, body: bytes, timestamp: int
) -> None:
    headers = webhook_headers(body, delivery_id="d", timestamp=timestamp, secret=secret)

    signed = f"{headers['X-Monitor-Timestamp']}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Monitor-Signature"], f"sha256={expected}")
    tampered = webhook_headers(
        body + b"x", delivery_id="d", timestamp=timestamp, secret=secret
    )
    assert tampered["X-Monitor-Signature"] != headers["X-Monitor-Signature"]


# --- DingTalk -----------------------------------------------------------------


def _dingtalk_expected(secret: str, timestamp: str) -> str:
    digest = hmac.new(
        secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


@given(secret=st.text(min_size=1), timestamp=st.integers(0, 2**45))
def test_dingtalk_url_is_signed_as_dingtalk_documents(
    secret: str, timestamp: int
) -> None:
    webhook = "https://oapi.dingtalk.com/robot/send?access_token=abc"

    url = dingtalk_url(webhook, secret, timestamp)

    assert url.startswith(webhook + "&timestamp=")
    query = parse_qs(urlsplit(url).query)
    assert query["access_token"] == ["abc"]
    assert query["timestamp"] == [str(timestamp)]
    assert query["sign"] == [_dingtalk_expected(secret, str(timestamp))]


def test_dingtalk_url_without_secret_is_unchanged() -> None:
    webhook = "https://oapi.dingtalk.com/robot/send?access_token=abc"

    assert dingtalk_url(webhook, None, 1) == webhook


def test_dingtalk_payload_is_markdown_that_mentions_its_mobiles() -> None:
    message = build_message(make_ticket(), "opened", console_url="https://ops.example")

    payload = dingtalk_payload(message, at_mobiles=["13800000001"])

    assert payload["msgtype"] == "markdown"
    assert payload["markdown"]["title"] == message.title
    text = payload["markdown"]["text"]
    assert text.startswith("### ［P2］ 新工单 T-3f2a9c01de-1 空调异味 负面声量\n")
    assert "[原帖](https://weibo.example/p1)" in text
    assert "[查看工单](https://ops.example/console/tickets/T-3f2a9c01de-1)" in text
    assert text.endswith("@13800000001")
    assert payload["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}


# --- Feishu -------------------------------------------------------------------


@given(secret=st.text(min_size=1), timestamp=st.integers(0, 2**40))
def test_feishu_payload_is_signed_as_feishu_documents(
    secret: str, timestamp: int
) -> None:
    message = build_message(make_ticket(), "opened")

    payload = feishu_payload(message, secret=secret, timestamp=timestamp)

    key = f"{payload['timestamp']}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert payload["timestamp"] == str(timestamp)
    assert payload["sign"] == expected


def test_feishu_payload_is_a_rich_text_post() -> None:
    message = build_message(make_ticket(), "opened", console_url="https://ops.example")

    payload = feishu_payload(message)

    assert payload["msg_type"] == "post"
    assert "sign" not in payload and "timestamp" not in payload
    post = payload["content"]["post"]["zh_cn"]
    assert post["title"] == message.title
    tags = [element for line in post["content"] for element in line]
    assert {"tag": "text", "text": "工单：T-3f2a9c01de-1"} in tags
    assert {"tag": "a", "text": "原帖", "href": "https://weibo.example/p1"} in tags
    assert tags[-1]["href"] == "https://ops.example/console/tickets/T-3f2a9c01de-1"


# --- WeCom, Slack, email ------------------------------------------------------


def test_wecom_payload_is_markdown_with_mentions() -> None:
    message = build_message(make_ticket(), "opened")

    payload = wecom_payload(message, mentioned_list=["wanggong"])

    assert payload["msgtype"] == "markdown"
    content = payload["markdown"]["content"]
    assert content.startswith("### ［P2］ 新工单 T-3f2a9c01de-1 空调异味 负面声量\n")
    assert content.endswith("<@wanggong>")


def test_wecom_content_stays_within_4096_bytes() -> None:
    message = build_message(make_ticket(priority_reason="很长" * 2000), "opened")

    payload = wecom_payload(message, mentioned_list=["wanggong"])

    content = payload["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert "…" in content and content.endswith("<@wanggong>")


def test_slack_payload_has_fallback_text_and_mrkdwn_blocks() -> None:
    message = build_message(make_ticket(), "opened", console_url="https://ops.example")

    payload = slack_payload(message, channel="#ops")

    assert payload["text"] == (
        message.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    )  # no Slack markup in this ticket: the fallback is the plain text, escaped
    assert payload["channel"] == "#ops"
    header, facts, evidence, link = payload["blocks"]
    assert header["text"] == {"type": "plain_text", "text": message.title}
    assert "*工单*：T-3f2a9c01de-1" in facts["text"]["text"]
    assert "&lt;b&gt;异味&lt;/b&gt; &amp; 很重" in evidence["text"]["text"]
    assert "<https://weibo.example/p1|原帖>" in evidence["text"]["text"]
    assert link["text"]["text"] == (
        "<https://ops.example/console/tickets/T-3f2a9c01de-1|查看工单>"
    )


def test_email_has_a_text_and_an_html_part() -> None:
    message = build_message(make_ticket(), "opened")

    sent = email_message(
        message,
        sender="monitor@example.com",
        recipients=["duty.ops@example.com", "wang.gong@example.com"],
        sent_at=T0,
        delivery_id="abc123",
    )
    email = message_from_bytes(email_bytes(sent), policy=policy.default)
    assert isinstance(email, EmailMessage)

    assert email["Subject"] == "[P2] 新工单 T-3f2a9c01de-1 空调异味 负面声量"
    assert email["To"] == "duty.ops@example.com, wang.gong@example.com"
    assert "abc123" in email["Message-ID"]
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert text is not None and html is not None
    assert "峰值 23" in text.get_content()  # type: ignore[attr-defined]
    assert "<table>" in html.get_content()  # type: ignore[attr-defined]


# --- posts cannot inject markup or links --------------------------------------

HOSTILE_EVIDENCE = (
    Evidence("h1", "看这里", author="路人", url="x> <!channel|y>"),
    Evidence("h2", "点我", url="javascript:alert(1)"),
    Evidence("h3", "正常的帖子", url="https://weibo.example/a%20b(c)<d>[e]|f"),
    Evidence("h4", "有空格", url="https://weibo.example/a b"),
)
#: The links a hostile ticket's payloads may hold: the third post, encoded,
#: and the console.
ALLOWED_TARGETS = {
    "https://weibo.example/a%20b%28c%29%3Cd%3E%5Be%5D%7Cf",
    "https://ops.example/console/tickets/T-3f2a9c01de-1",
}


def _markdown_targets(text: str) -> list[str]:
    return re.findall(r"\]\(([^)]*)\)", text)


def _slack_targets(text: str) -> list[str]:
    return [target.replace("&amp;", "&") for target in re.findall(r"<([^|>]*)\|", text)]


def _html_targets(text: str) -> list[str]:
    return re.findall(r"href=['\"]([^'\"]*)", text)


def _webhook(message: Any, ticket: Ticket) -> tuple[str, list[str]]:
    payload = webhook_payload(ticket, "opened", None, sent_at=T0)
    urls = [post["url"] for post in payload["ticket"]["evidence"] if post["url"]]
    return encode_json(payload).decode(), urls


def _dingtalk(message: Any, ticket: Ticket) -> tuple[str, list[str]]:
    payload = dingtalk_payload(message)
    return encode_json(payload).decode(), _markdown_targets(payload["markdown"]["text"])


def _wecom(message: Any, ticket: Ticket) -> tuple[str, list[str]]:
    payload = wecom_payload(message)
    return encode_json(payload).decode(), _markdown_targets(
        payload["markdown"]["content"]
    )


def _feishu(message: Any, ticket: Ticket) -> tuple[str, list[str]]:
    payload = feishu_payload(message)
    lines = payload["content"]["post"]["zh_cn"]["content"]
    hrefs = [element["href"] for line in lines for element in line if "href" in element]
    return encode_json(payload).decode(), hrefs


def _slack(message: Any, ticket: Ticket) -> tuple[str, list[str]]:
    payload = slack_payload(message)
    text = encode_json(payload).decode()
    mrkdwn = "\n".join(
        [payload["text"]] + [block["text"]["text"] for block in payload["blocks"]]
    )
    return text, _slack_targets(mrkdwn)


def _email(message: Any, ticket: Ticket) -> tuple[str, list[str]]:
    sent = email_message(
        message,
        sender="monitor@example.com",
        recipients=["duty@example.com"],
        sent_at=T0,
        delivery_id="d",
    )
    email = message_from_bytes(email_bytes(sent), policy=policy.default)
    assert isinstance(email, EmailMessage)
    plain, html = email.get_body(("plain",)), email.get_body(("html",))
    assert plain is not None and html is not None
    html_text = html.get_content()  # type: ignore[attr-defined]
    text = plain.get_content() + html_text  # type: ignore[attr-defined]
    return text, _html_targets(html_text)


CHANNEL_PAYLOADS = {
    "webhook": _webhook,
    "dingtalk": _dingtalk,
    "feishu": _feishu,
    "wecom": _wecom,
    "slack": _slack,
    "email": _email,
}


@pytest.mark.parametrize("channel", sorted(CHANNEL_PAYLOADS))
def test_hostile_post_urls_never_become_links_or_mentions(channel: str) -> None:
    ticket = make_ticket(evidence=HOSTILE_EVIDENCE)
    message = build_message(ticket, "opened", console_url="https://ops.example")

    text, targets = CHANNEL_PAYLOADS[channel](message, ticket)

    assert "<!channel" not in text
    assert "javascript:" not in text.lower()
    assert set(targets) <= ALLOWED_TARGETS, targets
    if channel != "webhook":
        assert "https://ops.example/console/tickets/T-3f2a9c01de-1" in targets
    assert "https://weibo.example/a%20b%28c%29%3Cd%3E%5Be%5D%7Cf" in targets


@pytest.mark.parametrize("channel", sorted(set(CHANNEL_PAYLOADS) - {"webhook"}))
def test_a_hand_built_message_is_checked_again_by_each_channel(channel: str) -> None:
    message = replace(
        build_message(make_ticket(), "opened"),
        evidence=(("a", "x> <!channel|y>"), ("b", "JavaScript:alert(1)")),
        link="javascript:alert(2)",
    )

    text, targets = CHANNEL_PAYLOADS[channel](message, make_ticket())

    assert "<!channel" not in text
    assert "javascript:" not in text.lower()
    assert targets == []


HOSTILE_TEXT = Evidence(
    "h4",
    "*粗体* `代码` ~删除~ _斜_ <!channel> <@U123> [点](javascript:alert(1))\n"
    "# 伪标题\n> 引用 | 表格 \\",
    author="王\n# 伪作者 <!here>",
    url="https://weibo.example/p4",
)


@pytest.mark.parametrize("channel", ["dingtalk", "wecom"])
def test_post_text_cannot_make_chat_markdown(channel: str) -> None:
    ticket = make_ticket(evidence=(HOSTILE_TEXT,), keyword="*热词*<@U9>")
    message = build_message(ticket, "opened")
    payload = CHANNEL_PAYLOADS[channel]
    payload_json, targets = payload(message, ticket)
    markdown = json.loads(payload_json)["markdown"]
    text = markdown.get("text") or markdown["content"]

    assert targets == ["https://weibo.example/p4"]
    for special in ("*粗体*", "`代码`", "~删除~", "_斜_", "<!", "<@", "[点]", "\\"):
        assert special not in text, special
    # Post text stays on its own list line: no heading, quote or table of its own.
    assert [line for line in text.splitlines() if line.startswith(("#", ">"))] == [
        "### ［P2］ 新工单 T-3f2a9c01de-1 空调异味 负面声量"
    ]
    assert "*热词*" not in text and "＊热词＊‹@U9›" in text


def test_post_text_cannot_make_slack_mentions_or_links() -> None:
    ticket = make_ticket(evidence=(HOSTILE_TEXT,), keyword="<!everyone>")
    payload = slack_payload(build_message(ticket, "opened"))

    text = encode_json(payload).decode()
    assert "<!" not in text and "<@" not in text
    assert "&lt;!channel&gt;" in payload["blocks"][2]["text"]["text"]
    assert _slack_targets(text) == ["https://weibo.example/p4"]


def test_post_text_cannot_make_html() -> None:
    ticket = make_ticket(evidence=(HOSTILE_TEXT,))
    text, targets = _email(build_message(ticket, "opened"), ticket)

    assert targets == ["https://weibo.example/p4"]
    assert "<!channel>" not in text.split("<!DOCTYPE html>", 1)[1]
    assert "&lt;!channel&gt;" in text


def test_every_slack_mrkdwn_text_is_verbatim() -> None:
    # Slack's default (verbatim false) auto-links URLs and parses channel
    # names and mentions in the text; our own <url|text> links still work.
    message = build_message(make_ticket(), "opened", console_url="https://ops.example")

    texts = [block["text"] for block in slack_payload(message)["blocks"]]

    mrkdwn = [text for text in texts if text["type"] == "mrkdwn"]
    assert len(mrkdwn) == 3
    assert all(text.get("verbatim") is True for text in mrkdwn), mrkdwn


def test_post_text_cannot_make_slack_emphasis_or_code() -> None:
    ticket = make_ticket(evidence=(HOSTILE_TEXT,), keyword="*热词*_x_")
    payload = slack_payload(build_message(ticket, "opened"))
    header, facts, evidence = payload["blocks"]

    for text in (payload["text"], facts["text"]["text"], evidence["text"]["text"]):
        for special in ("*粗体*", "`代码`", "~删除~", "_斜_", "*热词*", "_x_"):
            assert special not in text, (special, text)
    assert "＊粗体＊ ｀代码｀ ～删除～ ＿斜＿" in evidence["text"]["text"]
    # Our own labels stay bold; the post's keyword does not.
    assert "*关键词*：＊热词＊＿x＿" in facts["text"]["text"]


BARE_URLS = Evidence(
    "b1",
    "see https://evil.example/x",
    author="HTTP://evil.example/a",
    url="https://weibo.example/p1",
)
_INTACT_EVIL_URL = re.compile(r"[a-z]+://evil", re.IGNORECASE)


@pytest.mark.parametrize("channel", sorted(set(CHANNEL_PAYLOADS) - {"webhook"}))
def test_bare_urls_in_post_text_are_defanged(channel: str) -> None:
    ticket = make_ticket(evidence=(BARE_URLS,), keyword="https://evil.example/k")
    message = build_message(ticket, "opened", console_url="https://ops.example")

    text, targets = CHANNEL_PAYLOADS[channel](message, ticket)

    assert not _INTACT_EVIL_URL.search(text), text
    assert not [target for target in targets if "evil" in target], targets
    assert "see https：//evil.example/x" in text  # still shown, not a link
    assert "https：//evil.example/k" in text
    # The links we build are left alone.
    assert "https://weibo.example/p1" in targets
    assert "https://ops.example/console/tickets/T-3f2a9c01de-1" in targets


def test_chat_markdown_title_is_escaped_and_entities_cannot_make_mentions() -> None:
    ticket = make_ticket(topic="[点](javascript:x) *热*", keyword="&#60;@U1&#62;")

    markdown = build_message(ticket, "opened").markdown

    heading = markdown.splitlines()[0]
    assert heading == (
        "### ［P2］ 新工单 T-3f2a9c01de-1 ［点］(javascript:x) ＊热＊ 负面声量"
    )
    assert "&" not in markdown
    assert "＆＃60;@U1＆＃62;" in markdown


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://weibo.example/p1", "https://weibo.example/p1"),
        (" HTTPS://Weibo.Example/p1?a=1&b=2#c ", "https://weibo.example/p1?a=1&b=2#c"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://127.0.0.1:6066/", "http://127.0.0.1:6066/"),
        (
            "https://weibo.example/a%20b(c)<d>[e]|f\"g'h`\\",
            "https://weibo.example/a%20b%28c%29%3Cd%3E%5Be%5D%7Cf%22g%27h%60%5C",
        ),
        ("http://host:0080/x", "http://host:80/x"),
        ("http://[::0:1]/", "http://[::1]/"),
        (
            "https://例子.中国/路径?q=空调",
            "https://xn--fsqu00a.xn--fiqs8s/%E8%B7%AF%E5%BE%84?q=%E7%A9%BA%E8%B0%83",
        ),
        ("x> <!channel|y>", None),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("//evil.example/x", None),
        ("/relative/path", None),
        ("https://bank.example@evil.example/", None),
        ("http://user@weibo.example/", None),
        ("https://weibo.example/a b", None),
        ("https://weibo.example/a\u3000b", None),
        ("https://weibo.example/\u202egnp.exe", None),
        ("http://[fe80::1%eth0]/", None),
        ("https://x.example:http/", None),
        ("https://evil.example>/x", None),
        ("https://x.example:99999/", None),
        ("http://[::1/x", None),
        ("https:///no-host", None),
        ("https://x.example/\x1b[31m", None),
        ("https://x.example/\u009b31m", None),
        ("", None),
        (None, None),
    ],
)
def test_link_target_accepts_only_http_urls_and_encodes_breaking_characters(
    url: str | None, target: str | None
) -> None:
    assert link_target(url) == target


_URL_STARTS = st.sampled_from(
    ["https://", "http://", "HTTP://", "ftp://", "javascript:", "//", ""]
)
_URL_TAILS = st.text(
    st.sampled_from("az09.-_:@[]/?#%\\ \t\x00\x7f\x9b\u202e\u3000例ｆ"), max_size=24
)


@given(start=_URL_STARTS, tail=_URL_TAILS)
def test_ingestion_refuses_exactly_the_urls_links_refuse(start: str, tail: str) -> None:
    url = start + tail
    # link_target strips white space around a URL; ingestion keeps a URL as
    # the post gave it, so it refuses that white space instead.
    if not url.strip() or url != url.strip():
        return
    try:
        accepted = parse_post(
            {"id": "u", "text": "x", "published_at": "2026-11-20T10:00:00Z", "url": url}
        ).url
    except InvalidRecordError:
        accepted = None

    assert (accepted is not None) == (link_target(url) is not None), url


@given(st.text(max_size=60).map(lambda tail: "https://weibo.example/" + tail))
def test_link_target_is_idempotent_and_never_breaks_a_link(url: str) -> None:
    target = link_target(url)
    if target is not None:
        assert link_target(target) == target
        assert not set(target) & set(" ()<>[]|\"'`\\\n")
        assert target.isascii()


# --- replies ------------------------------------------------------------------

OK, RETRY, FAIL = "ok", "retry", "fail"


@pytest.mark.parametrize(
    ("kind", "status", "body", "outcome"),
    [
        ("webhook", 200, "", OK),
        ("webhook", 204, "", OK),
        ("webhook", 500, "oops", RETRY),
        ("webhook", 503, "", RETRY),
        ("webhook", 429, "", RETRY),
        ("webhook", 408, "", RETRY),
        ("webhook", 404, "not found", FAIL),
        ("webhook", 401, "bad signature", FAIL),
        ("dingtalk", 200, '{"errcode":0,"errmsg":"ok"}', OK),
        ("dingtalk", 200, '{"errcode":310000,"errmsg":"sign not match"}', FAIL),
        ("dingtalk", 200, '{"errcode":300001,"errmsg":"token is not exist"}', FAIL),
        ("dingtalk", 200, '{"errcode":130101,"errmsg":"send too fast"}', RETRY),
        ("dingtalk", 200, '{"errcode":410100,"errmsg":"send too fast"}', RETRY),
        ("dingtalk", 200, '{"errcode":-1,"errmsg":"system busy"}', RETRY),
        ("dingtalk", 200, "<html>proxy</html>", FAIL),
        ("dingtalk", 502, "", RETRY),
        ("feishu", 200, '{"code":0,"data":{},"msg":"success"}', OK),
        ("feishu", 200, '{"StatusCode":0,"StatusMessage":"success"}', OK),
        ("feishu", 200, '{"code":19021,"msg":"sign match fail"}', FAIL),
        ("feishu", 400, '{"code":11232,"msg":"frequency limited"}', RETRY),
        ("feishu", 400, '{"code":9499,"msg":"Bad Request"}', FAIL),
        ("wecom", 200, '{"errcode":0,"errmsg":"ok"}', OK),
        ("wecom", 200, '{"errcode":45009,"errmsg":"api freq out of limit"}', RETRY),
        ("wecom", 200, '{"errcode":93000,"errmsg":"invalid webhook url"}', FAIL),
        ("slack", 200, "ok", OK),
        ("slack", 400, "invalid_payload", FAIL),
        ("slack", 404, "no_service", FAIL),
        ("slack", 200, "something else", FAIL),
        ("slack", 429, "", RETRY),
    ],
)
def test_replies_are_read_as_each_vendor_documents(
    kind: str, status: int, body: str, outcome: str
) -> None:
    if outcome == OK:
        check_reply(kind, status, body)
        return
    with pytest.raises(DeliveryError) as caught:
        check_reply(kind, status, body)
    assert caught.value.retryable is (outcome == RETRY)


def test_reply_error_names_the_vendor_code() -> None:
    with pytest.raises(DeliveryError, match="310000: sign not match"):
        check_reply("dingtalk", 200, '{"errcode":310000,"errmsg":"sign not match"}')


def test_retry_after_is_kept() -> None:
    with pytest.raises(DeliveryError) as caught:
        check_reply("slack", 429, "rate_limited", retry_after=7.0)

    assert caught.value.retry_after == 7.0


# --- rate limit ---------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_of_the_rate_then_refills_over_the_minute() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, clock)

    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 29
    assert not bucket.take()
    clock.now += 1  # 30 s at 2 a minute: one token
    assert bucket.take()
    assert not bucket.take()
    clock.now += 3600  # never more than the bucket holds
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_bucket_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate_per_minute"):
        TokenBucket(0)


# --- configuration ------------------------------------------------------------

EXAMPLE_ENV = {
    "ALERT_WEBHOOK_URL": "https://hooks.example/monitor",
    "ALERT_WEBHOOK_SECRET": "s3cret",
    "ALERT_DINGTALK_WEBHOOK": "https://oapi.dingtalk.com/robot/send?access_token=a",
    "ALERT_DINGTALK_SECRET": "SECabc",
    "ALERT_FEISHU_WEBHOOK": "https://open.feishu.cn/open-apis/bot/v2/hook/x",
    "ALERT_FEISHU_SECRET": "fs",
    "ALERT_WECOM_WEBHOOK": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
    "ALERT_SLACK_WEBHOOK": "https://hooks.slack.com/services/T/B/X",
    "ALERT_SMTP_HOST": "smtp.example.com",
    "ALERT_SMTP_PORT": "587",
    "ALERT_SMTP_USER": "monitor",
    "ALERT_SMTP_PASSWORD": "pw",
}


def test_the_example_rules_file_channels_are_all_usable() -> None:
    channels = load_rules(EXAMPLE_RULES).channels

    Notifier(channels, EXAMPLE_ENV)  # raises ConfigError if not


def test_missing_environment_variables_name_their_channels() -> None:
    channels = load_rules(EXAMPLE_RULES).channels
    env = {
        key: value
        for key, value in EXAMPLE_ENV.items()
        if key not in {"ALERT_DINGTALK_SECRET", "ALERT_SMTP_HOST"}
    }

    with pytest.raises(ConfigError) as caught:
        Notifier(channels, env)

    assert caught.value.problems == [
        "channel 'facilities-dingtalk': environment variable "
        "ALERT_DINGTALK_SECRET is not set",
        "channel 'duty-email': environment variable ALERT_SMTP_HOST is not set",
    ]


@pytest.mark.parametrize(
    ("kind", "settings", "reason"),
    [
        ("webhook", {"url": "ftp://x"}, "url must be an http"),
        ("webhook", {"url": "https://x", "timeout": "soon"}, "bad duration"),
        ("dingtalk", {"webhook": "${ALERT_HOOK}"}, "webhook must be an http"),
        ("wecom", {"webhook": "https://x", "mentioned_list": [1]}, "list of texts"),
        (
            "email",
            {"smtp_host": "h", "from": "a@b", "to": ["c@d"], "smtp_port": "smtp"},
            "smtp_port must be a number",
        ),
        (
            "email",
            {
                "smtp_host": "h",
                "from": "a@b",
                "to": ["c@d"],
                "starttls": True,
                "use_tls": True,
            },
            "not both",
        ),
        (
            "email",
            {"smtp_host": "h", "from": "a@b", "to": ["c@d"], "username": "u"},
            "username and password",
        ),
        ("email", {"smtp_host": "h", "from": "a@b", "to": []}, "at least one"),
        ("pager", {}, "unknown channel kind"),
    ],
)
def test_bad_settings_are_reported_with_the_channel(
    kind: str, settings: dict[str, Any], reason: str
) -> None:
    channels = {"bad": Channel("bad", kind, settings)}

    with pytest.raises(ConfigError) as caught:
        Notifier(channels, {"ALERT_HOOK": "not-a-url"})

    (problem,) = caught.value.problems
    assert problem.startswith(f"channel 'bad' ({kind}): ")
    assert reason in problem


def test_a_bad_webhook_url_is_reported_without_its_token() -> None:
    url = "https://hooks.example:99999/services/T0/tok-123"
    channels = {"bad": Channel("bad", "slack", {"webhook": url})}

    with pytest.raises(ConfigError) as caught:
        Notifier(channels, {})

    (problem,) = caught.value.problems
    assert "webhook is not a valid URL" in problem and "tok-123" not in problem


def test_a_delivery_error_never_repeats_the_channel_url_or_secret() -> None:
    url = "https://hooks.example/services/T0/tok-123"
    channels = {"hook": Channel("hook", "webhook", {"url": url, "secret": "s3cr3t"})}
    notifier = Notifier(channels, {}, retries=0)

    async def failing_attempt(*_: Any) -> None:
        raise DeliveryError(f"cannot reach {url} (signed with s3cr3t)", retryable=False)

    notifier._attempt = failing_attempt  # type: ignore[method-assign]

    async def notify() -> list[Any]:
        async with notifier:
            return await notifier.notify(make_ticket(), "opened", ["hook"])

    (delivery,) = asyncio.run(notify())
    assert delivery.status == "failed"
    assert delivery.error == "cannot reach <url> (signed with <secret>)"


def test_every_notify_kind_has_a_label() -> None:
    for kind in NOTIFY_KINDS:
        assert build_message(make_ticket(), kind).title.startswith("[P2] ")


@given(title=st.text(st.sampled_from("空调异味 负面声量T-1[P2]ab"), max_size=120))
def test_email_subject_survives_the_wire(title: str) -> None:
    message = build_message(make_ticket(), "opened")
    sent = email_message(
        replace(message, title=title.strip() or "x"),
        sender="monitor@example.com",
        recipients=["duty.ops@example.com"],
        sent_at=T0,
        delivery_id="d",
    )

    received = message_from_bytes(email_bytes(sent), policy=policy.default)

    assert received["Subject"] == (title.strip() or "x")


RULES_WITH_TLS_EMAIL = """
topics:
  停车:
    keywords: [停车]
teams:
  ops:
    members: [值班]
channels:
  mail:
    kind: email
    smtp_host: smtp.example.com
    smtp_port: 465
    use_tls: USE_TLS
    from: monitor@example.com
    to: [duty@example.com]
routing:
  default_team: ops
"""


def test_rules_file_accepts_use_tls_for_email(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_WITH_TLS_EMAIL.replace("USE_TLS", "true"), encoding="utf-8")

    channels = load_rules(path).channels

    assert channels["mail"].settings["use_tls"] is True
    Notifier(channels, {})


def test_rules_file_refuses_a_use_tls_that_is_not_a_flag(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_WITH_TLS_EMAIL.replace("USE_TLS", '"yes"'), encoding="utf-8")

    with pytest.raises(ConfigError, match="use_tls must be true or false"):
        load_rules(path)
