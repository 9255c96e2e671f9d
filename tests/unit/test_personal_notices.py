"""Personal notices: the rules file's `personal:`, the outbox's `@person/via`
targets, the notifier's resolution and @mentions."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from monitor.analysis.tickets.model import NoticeKind
from monitor.analysis.tickets.outbox import is_personal, queue_notice
from monitor.analysis.tickets.policy import TicketSettings
from monitor.config.rules import (
    PersonalNotices,
    RuleSet,
    load_rules,
    parse_personal_channel,
    personal_channel,
)
from monitor.errors import ConfigError
from monitor.services.ticketing import TicketService
from monitor.sinks.notifiers.mentions import (
    dingtalk_mention,
    dingtalk_targets,
    feishu_mention,
    feishu_target,
)
from monitor.sinks.notifiers.messages import (
    KIND_LABELS,
    NOTIFY_KINDS,
    build_digest_message,
    build_message,
)
from monitor.sinks.notifiers.notifier import Notifier, _http_request, _Notice
from tests.unit.test_notifiers import make_ticket

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 13, 0, tzinfo=timezone(timedelta(hours=8)))

RULES = """\
topics:
  空调异味:
    keywords: [空调]
    rules:
      - {name: 负面声量, kind: negative_volume, threshold: 6, channels: [ding]}
owners:
  王工: {email: wang@example.com, mobile: "13800000011", dingtalk: wang01,
        feishu: ou_abc123}
  李工: {email: li@example.com}
  张经理: {mobile: "+8613800000001"}
teams:
  facilities: {members: [王工, 李工], escalation: [张经理]}
channels:
  ding: {kind: dingtalk, webhook: "http://127.0.0.1:1/robot/send?access_token=t"}
  mail: {kind: email, smtp_host: 127.0.0.1, from: m@example.com,
         to: [duty@example.com]}
  sms: {kind: http_sms, url: "http://127.0.0.1:1/sms", secret: s}
personal: {email: mail, sms: sms}
routing: {default_team: facilities}
"""


def load(tmp_path: Path, text: str = RULES) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules(path)


def test_the_personal_section_loads_with_its_defaults(tmp_path: Path) -> None:
    rules = load(tmp_path)
    assert rules.personal == PersonalNotices(email="mail", sms="sms")
    assert rules.personal.on == {"opened", "assigned", "transferred", "escalated"}
    assert rules.owners["王工"].contacts["feishu"] == "ou_abc123"


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (
            ("personal: {email: mail, sms: sms}", "personal: {email: sms}"),
            "expected email",
        ),
        (
            ("personal: {email: mail, sms: sms}", "personal: {sms: mail}"),
            "expected aliyun_sms or http_sms",
        ),
        (
            ("personal: {email: mail, sms: sms}", "personal: {sms: nope}"),
            "unknown channel",
        ),
        (
            ("personal: {email: mail, sms: sms}", "personal: {on: [closed]}"),
            "on must be one of",
        ),
        (("  ding: {kind", '  "@ding": {kind'), "may not start with '@'"),
        (('mobile: "13800000011"', "mobile: call-me"), "mobile must be digits"),
        (("email: li@example.com", "email: li"), "email must be an address"),
    ],
)
def test_bad_personal_settings_are_reported_with_their_line(
    tmp_path: Path, edit: tuple[str, str], problem: str
) -> None:
    assert edit[0] in RULES
    with pytest.raises(ConfigError) as error:
        load(tmp_path, RULES.replace(*edit))
    assert problem in str(error.value)
    assert re.search(r" line \d+: ", str(error.value))


def test_the_examples_commented_sms_and_personal_sections_are_valid(
    tmp_path: Path,
) -> None:
    text = (ROOT / "examples" / "rules.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line == "  # ops-sms:")
    end = next(i for i, line in enumerate(lines) if line == "routing:")
    for index in range(start, end):
        line = lines[index]
        if re.match(r"\s*# \s*[a-z_-]+:", line):
            lines[index] = re.sub(r"^(\s*)# ", r"\1", line, count=1)
    rules = load(tmp_path, "\n".join(lines) + "\n")
    assert rules.channels["ops-sms"].kind == "aliyun_sms"
    assert rules.channels["gateway-sms"].kind == "http_sms"
    assert rules.personal == PersonalNotices(email="duty-email", sms="ops-sms")


def test_personal_channel_names_round_trip() -> None:
    name = personal_channel("王工", "sms")
    assert name == "@王工/sms" and is_personal(name)
    assert parse_personal_channel(name) == ("王工", "sms")
    assert parse_personal_channel("ding") is None
    assert parse_personal_channel("@/sms") is None


# --- the ticket service queues personal targets ---------------------------------


def service_for(rules: RuleSet) -> TicketService:
    return TicketService(store=None, rules=lambda: rules)  # type: ignore[arg-type]


def test_the_assignee_and_the_escalation_contact_are_targeted(tmp_path: Path) -> None:
    service = service_for(load(tmp_path))
    ticket = make_ticket(owner="王工", escalation_contact="张经理")
    assert service.personal_targets(ticket, "opened") == ("@王工/email", "@王工/sms")
    assert service.personal_targets(ticket, "escalated") == (
        "@王工/email",
        "@王工/sms",
        "@张经理/sms",
    )
    assert service.personal_targets(ticket, "reopened") == (), "not in on:"
    li = make_ticket(owner="李工")
    assert service.personal_targets(li, "assigned") == ("@李工/email",), "no mobile"
    assert service.personal_targets(make_ticket(owner=None), "opened") == ()


def test_no_personal_section_means_no_personal_targets(tmp_path: Path) -> None:
    text = RULES.replace("personal: {email: mail, sms: sms}\n", "")
    service = service_for(load(tmp_path, text))
    assert service.personal_targets(make_ticket(owner="王工"), "opened") == ()


# --- the outbox -------------------------------------------------------------------


def test_personal_targets_get_the_escalation_itself_not_an_opening() -> None:
    ticket = replace(make_ticket(), outbox=(), delivery={"ops-webhook": "sent"})
    queued = queue_notice(
        ticket,
        NoticeKind.ESCALATED,
        now=NOW,
        channels=("ops-webhook", "@张经理/sms"),
        settings=TicketSettings(),
    )
    assert [(n.kind, n.channels) for n in queued.outbox] == [
        (NoticeKind.ESCALATED, ("ops-webhook", "@张经理/sms"))
    ]


def test_an_assignment_notice_goes_alone() -> None:
    ticket = replace(make_ticket(priority="P3"), outbox=(), delivery={})
    settings = TicketSettings()
    opened = queue_notice(
        ticket, NoticeKind.OPENED, now=NOW, channels=("ops-webhook",), settings=settings
    )
    opened = replace(opened, revision=opened.revision + 1)
    assigned = queue_notice(
        opened,
        NoticeKind.ASSIGNED,
        now=NOW,
        channels=("@李工/email",),
        settings=settings,
    )
    assert [n.kind for n in assigned.outbox] == [NoticeKind.OPENED, NoticeKind.ASSIGNED]
    assert assigned.outbox[1].due_at == NOW, "due at once"
    later = replace(assigned, revision=assigned.revision + 1)
    updated = queue_notice(
        later, NoticeKind.UPDATED, now=NOW, channels=("ops-webhook",), settings=settings
    )
    assert updated.outbox[1].channels == ("@李工/email",), "nothing folds into it"
    assert updated.outbox[0].folded == 1


# --- the notifier -------------------------------------------------------------------


def notifier_for(rules: RuleSet, **options: Any) -> Notifier:
    return Notifier(
        rules.channels, {}, owners=rules.owners, personal=rules.personal, **options
    )


def test_a_personal_target_is_its_channel_with_one_recipient(tmp_path: Path) -> None:
    notifier = notifier_for(load(tmp_path))
    email, _ = notifier._resolve("@王工/email")
    assert email is not None and email.kind == "email" and email.base == "mail"
    assert email.settings["to"] == ["wang@example.com"]
    assert email.settings["from"] == "m@example.com"
    sms, _ = notifier._resolve("@张经理/sms")
    assert sms is not None and sms.settings["to"] == ["+8613800000001"]
    missing, why = notifier._resolve("@李工/sms")
    assert missing is None and "no mobile" in why
    assert notifier.free("@王工/email") == notifier.free("mail")


async def test_a_person_without_the_contact_is_skipped_not_retried(
    tmp_path: Path,
) -> None:
    async with notifier_for(load(tmp_path)) as notifier:
        delivery = await notifier.send(
            "@李工/sms", make_ticket(owner="李工"), "assigned", delivery_id="d"
        )
    assert delivery.status == "skipped" and not delivery.retryable


def test_an_assigned_notice_reads_as_such(tmp_path: Path) -> None:
    message = notifier_for(load(tmp_path))._message(make_ticket(), "assigned", None)
    assert "指派给你" in message.title
    assert ("通知", "指派给你") in message.facts


def test_the_assigned_kind_has_its_label_in_the_messages() -> None:
    assert KIND_LABELS["assigned"] == "指派给你" and "assigned" in NOTIFY_KINDS
    message = build_message(make_ticket(owner="李工"), "assigned")
    assert message.title == "[P2] 指派给你 T-3f2a9c01de-1 空调异味 负面声量"
    assert ("通知", "指派给你") in message.facts
    # Assignments over a channel's limit share a digest with other notices.
    digest = build_digest_message(
        [(make_ticket(priority="P1"), "opened", 0), (make_ticket(), "assigned", 0)]
    )
    assert [label for label, _ in digest.facts] == ["[P1] 新工单", "[P2] 指派给你"]


async def test_a_personal_email_has_a_valid_ascii_message_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[bytes, dict[str, Any]]] = []

    async def send(message: bytes, **options: Any) -> tuple[dict[str, Any], str]:
        sent.append((message, options))
        return {}, "250 OK"

    monkeypatch.setattr(aiosmtplib, "send", send)
    async with notifier_for(load(tmp_path)) as notifier:
        delivery = await notifier.send(
            "@王工/email", make_ticket(), "assigned", delivery_id="T-1#n2@@王工/email"
        )

    assert delivery.status == "sent", delivery.error
    ((raw, options),) = sent
    assert options["recipients"] == ["wang@example.com"]
    message_id = message_from_bytes(raw, policy=policy.default)["Message-ID"]
    assert message_id.endswith(".T-1#n2%40%40%E7%8E%8B%E5%B7%A5/email@example.com>")
    assert message_id.count("@") == 1 and message_id.isascii()


def test_group_notices_mention_the_assignee(tmp_path: Path) -> None:
    rules = load(tmp_path)
    notifier = notifier_for(rules)
    ticket = make_ticket(owner="王工")
    target, _ = notifier._resolve("ding")
    assert target is not None
    notice = _Notice(ticket, "opened", None, build_message(ticket, "opened"), "d")
    mentioned = notifier._for_target(target, notice)
    _, body, _ = _http_request(target, mentioned, 1_700_000_000.0)
    assert b'"atUserIds":["wang01"]' in body and "@wang01".encode() in body
    quiet = replace(rules.personal, chat=False) if rules.personal else None
    notifier.use_directory(rules.owners, quiet)
    assert notifier._for_target(target, notice).mention == {}


def test_dingtalk_mentions_by_id_or_mobile() -> None:
    assert dingtalk_targets({"dingtalk": "wang01"}) == ([], ["wang01"])
    assert dingtalk_targets({"mobile": "13800000011"}) == (["13800000011"], [])
    assert dingtalk_targets({"dingtalk": "bad id)"}) == ([], [])
    card = {
        "msgtype": "actionCard",
        "actionCard": {
            "title": "t",
            "text": "body",
            "btns": [{"title": "确认", "actionURL": "https://x/a"}],
        },
    }
    payload = dingtalk_mention(card, ["13800000011"], ["wang01"])
    assert payload["msgtype"] == "markdown", "an actionCard cannot @ anyone"
    assert "[确认](https://x/a)" in payload["markdown"]["text"]
    assert payload["markdown"]["text"].endswith("@13800000011 @wang01")
    assert payload["at"] == {
        "atMobiles": ["13800000011"],
        "atUserIds": ["wang01"],
        "isAtAll": False,
    }


def test_feishu_mentions_by_open_id() -> None:
    assert feishu_target({"feishu": "ou_abc"}) == "ou_abc"
    assert feishu_target({"feishu": '"><script>'}) is None
    post = {"msg_type": "post", "content": {"post": {"zh_cn": {"content": []}}}}
    at = feishu_mention(post, "ou_abc", "王工")["content"]["post"]["zh_cn"]["content"]
    assert at == [[{"tag": "at", "user_id": "ou_abc", "user_name": "王工"}]]
    card = feishu_mention(
        {"msg_type": "interactive", "card": {"elements": []}}, "ou_abc"
    )
    assert card["card"]["elements"][-1]["text"]["content"] == "<at id=ou_abc></at>"
    text = feishu_mention({"msg_type": "text", "content": {"text": "hi"}}, "ou_abc")
    assert text["content"]["text"] == 'hi <at user_id="ou_abc"></at>'


class Links:
    """A stand-in action-link issuer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def buttons(self, ticket: Any, channel: str, actor: str | None) -> tuple[Any, ...]:
        from monitor.sinks.notifiers.messages import ActionLink

        self.calls.append((ticket.ticket_id, channel, actor))
        return (ActionLink("acknowledge", "确认", "https://ops.example/console/a#t=x"),)


def test_the_link_issuer_adds_buttons_to_chat_notices_only(tmp_path: Path) -> None:
    links = Links()
    notifier = notifier_for(load(tmp_path), link_issuer=links)
    ticket = make_ticket(owner="王工")
    notice = _Notice(ticket, "opened", None, build_message(ticket, "opened"), "d")
    ding, _ = notifier._resolve("ding")
    mail, _ = notifier._resolve("@王工/email")
    assert ding is not None and mail is not None
    assert len(notifier._for_target(ding, notice).message.actions) == 1
    assert notifier._for_target(mail, notice).message.actions == ()
    assert links.calls == [(ticket.ticket_id, "ding", "王工")]
