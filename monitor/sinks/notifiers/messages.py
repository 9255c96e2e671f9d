"""The neutral notification message: what on-call staff read about a ticket.

:func:`build_message` turns a ticket into a :class:`Message` (title, facts,
evidence, console link) that renders itself as plain text, chat markdown and
HTML; the channel payloads in :mod:`monitor.sinks.notifiers.payloads` are
built from it.

Posts are written by strangers, so nothing in them may become markup or a
link: post text is escaped for each format (:func:`chat_text` for chat
markdown, :func:`html.escape` for HTML), a bare URL in it is defanged
(:func:`defang_urls`: ``https：//``, so no client auto-links it), and a post's
URL becomes a link only when :func:`link_target` accepts it as an http(s)
URL; any other URL is left out. Every renderer checks again, so a
:class:`Message` built by hand is as safe.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit, urlunsplit

from monitor.analysis.tickets.model import (
    ACKNOWLEDGED,
    BURST,
    CLOSED,
    EMERGING_KEYWORD,
    HOT_WORD,
    IN_PROGRESS,
    NEGATIVE_SHARE,
    NEGATIVE_VOLUME,
    OPEN,
    REPEAT_COMPLAINTS,
    RESOLVED,
    Signal,
    Ticket,
    TicketEvent,
)
from monitor.records import check_http_url

NOTIFY_KINDS = (
    "opened",
    "reopened",
    "escalated",
    "acknowledged",
    "resolved",
    "updated",
    "repeat",
    "assigned",
)

#: How each notification kind reads in a message.
KIND_LABELS = {
    "opened": "新工单",
    "reopened": "重新打开",
    "escalated": "升级",
    "acknowledged": "已确认",
    "resolved": "已解决",
    "updated": "更新",
    "repeat": "仍未确认",
    # Assigned or transferred to the reader: sent to them personally only.
    "assigned": "指派给你",
}
#: Signals an incident's message lists at most.
MAX_SIGNALS = 8
_STATUS_LABELS = {
    OPEN: "待处理",
    ACKNOWLEDGED: "已确认",
    IN_PROGRESS: "处理中",
    RESOLVED: "已解决",
    CLOSED: "已关闭",
}
_RULE_KIND_LABELS = {
    NEGATIVE_VOLUME: "负面声量",
    NEGATIVE_SHARE: "负面占比",
    BURST: "声量突增",
    EMERGING_KEYWORD: "新关键词",
    REPEAT_COMPLAINTS: "重复投诉",
    HOT_WORD: "异常热词",
}

#: Evidence posts a message shows at most, and characters of each excerpt
#: and author handle.
MAX_EVIDENCE = 3
MAX_EXCERPT_CHARS = 120
MAX_AUTHOR_CHARS = 40

#: Characters chat markdown (DingTalk, WeCom) reads as markup, and the
#: look-alikes shown instead. ``&`` too: a renderer that decodes entities
#: first would read ``&#60;@id&#62;`` as a mention.
_CHAT_MARKUP = str.maketrans(
    {
        "&": "＆",
        "[": "［",
        "]": "］",
        "<": "‹",
        ">": "›",
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "~": "～",
        "#": "＃",
        "|": "｜",
        "\\": "＼",
    }
)

#: What a link keeps unencoded in its path, and in its query and fragment:
#: RFC 3986's delimiters except those that end or break a link in markdown,
#: Slack mrkdwn or an HTML attribute (quotes, parentheses, brackets).
_PATH_SAFE = "/:@!$&*+,;=%~"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True)
class ActionLink:
    """A one-tap action button of a chat notice (see :mod:`monitor.web.links`).

    Attributes:
        action: ``acknowledge`` or ``start``.
        label: The button's text, e.g. ``确认``.
        url: ``<console_url>/console/a#t=<token>``; shown only when
            :func:`link_target` accepts it.

    """

    action: str
    label: str
    url: str


@dataclass(frozen=True)
class Message:
    """A notification before any channel shapes it.

    Attributes:
        title: One line, e.g. ``[P2] 新工单 T-ab12-1 空调异味 负面声量``.
        facts: ``(label, value)`` pairs in display order.
        evidence: Up to :data:`MAX_EVIDENCE` posts as ``(excerpt, url)``;
            ``url`` is ``None`` unless :func:`link_target` accepts it.
        link: The ticket in the console, if a console URL is configured.
        actions: One-tap action links (acknowledge, start) for chat cards;
            empty unless the notifier has an action-link issuer.

    """

    title: str
    facts: tuple[tuple[str, str], ...]
    evidence: tuple[tuple[str, str | None], ...] = ()
    link: str | None = None
    actions: tuple[ActionLink, ...] = ()

    @property
    def action_targets(self) -> tuple[tuple[str, str], ...]:
        """``(label, url)`` of each action whose URL :func:`link_target` accepts."""
        found = []
        for item in self.actions:
            target = link_target(item.url)
            if target:
                found.append((item.label, target))
        return tuple(found)

    @property
    def lines(self) -> tuple[str, ...]:
        """Plain-text lines: title, facts, evidence (with http(s) URLs), link.

        Bare URLs in the text are defanged (:func:`defang_urls`); only the
        evidence and console links stay clickable.
        """
        return self.render_lines(defang_urls)

    def render_lines(
        self,
        text: Callable[[str], str],
        link: Callable[[str], str] = str,
    ) -> tuple[str, ...]:
        """Return the plain-text lines with every text escaped by ``text``.

        Args:
            text: Escapes the title, fact labels and values and excerpts for
                the format at hand; it must defang URLs (:func:`defang_urls`).
            link: Escapes the link targets :func:`link_target` accepted.

        """
        lines = [
            text(self.title),
            *(f"{text(label)}：{text(value)}" for label, value in self.facts),
        ]
        if self.evidence:
            lines.append("证据：")
            for number, (excerpt, url) in enumerate(self.evidence, 1):
                target = link_target(url)
                lines.append(
                    f"{number}. {text(excerpt)}"
                    + (f" {link(target)}" if target else "")
                )
        console = link_target(self.link)
        if console:
            lines.append(f"工单详情：{link(console)}")
        for label, target in self.action_targets:
            lines.append(f"{text(label)}：{link(target)}")
        return tuple(lines)

    @property
    def text(self) -> str:
        """The plain-text lines joined with newlines."""
        return "\n".join(self.lines)

    @property
    def markdown(self) -> str:
        """Markdown for chat robots (DingTalk, WeCom): heading, list, links."""
        lines = [f"### {chat_text(self.title)}"]
        lines += [f"- **{label}**：{chat_text(value)}" for label, value in self.facts]
        if self.evidence:
            lines += ["", "**证据**"]
            for number, (excerpt, url) in enumerate(self.evidence, 1):
                target = link_target(url)
                post_link = f" [原帖]({target})" if target else ""
                lines.append(f"{number}. {chat_text(excerpt)}{post_link}")
        link = link_target(self.link)
        if link:
            lines += ["", f"[查看工单]({link})"]
        return "\n".join(lines)

    @property
    def html(self) -> str:
        """A small HTML document: title, facts table, evidence list, link.

        Text is HTML-escaped and its bare URLs defanged; only the evidence
        and console links are ``<a>`` elements.
        """
        esc = html.escape

        def text(value: str) -> str:
            return esc(defang_urls(value))

        rows = "".join(
            f"<tr><th align='left'>{text(label)}</th><td>{text(value)}</td></tr>"
            for label, value in self.facts
        )
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>{text(self.title)}</title></head><body>",
            f"<h2>{text(self.title)}</h2><table>{rows}</table>",
        ]
        if self.evidence:
            items = "".join(
                f"<li>{text(excerpt)}"
                + (f" <a href='{esc(target)}'>原帖</a>" if target else "")
                + "</li>"
                for excerpt, target in (
                    (excerpt, link_target(url)) for excerpt, url in self.evidence
                )
            )
            parts.append(f"<h3>证据</h3><ol>{items}</ol>")
        link = link_target(self.link)
        if link:
            parts.append(f"<p><a href='{esc(link)}'>查看工单</a></p>")
        if self.action_targets:
            buttons = " ".join(
                f"<a href='{esc(target)}'>{text(label)}</a>"
                for label, target in self.action_targets
            )
            parts.append(f"<p>{buttons}</p>")
        parts.append("</body></html>")
        return "".join(parts)


def chat_text(text: str) -> str:
    r"""Make post text safe inside chat markdown (DingTalk, WeCom).

    Chat markdown has no reliable escaping, so the characters that would open
    a link, a tag, a mention, an entity or emphasis (``& [ ] < > * _ ` ~ # |
    \``) are swapped for full-width look-alikes, line breaks for spaces so
    that nothing can start a heading, quote or list, and bare URLs are
    defanged (:func:`defang_urls`): post text cannot forge a link or a
    mention.
    """
    return defang_urls(" ".join(text.split())).translate(_CHAT_MARKUP)


def defang_urls(text: str) -> str:
    """Return ``text`` with every ``://`` written ``：//`` (a full-width colon).

    Chat robots, Slack and mail clients turn a bare ``https://...`` into a
    link; in text that came from a post, that would be a link nobody
    checked. Real links are built apart, from :func:`link_target`.
    """
    return text.replace("://", "：//")


def link_target(url: str | None) -> str | None:
    r"""Return ``url`` fit to be a link target, or ``None`` if it must not be one.

    Only URLs that :func:`monitor.records.check_http_url` accepts qualify,
    the rule ingestion applies too: absolute ``http``/``https`` URLs with a
    host name or IP address, a valid port, no user name
    (``https://bank.example@evil.example``) and no white space or control
    character inside (white space around is stripped); anything else
    (``javascript:``, relative or malformed URLs) gives ``None``. In the
    path, query and fragment, quotes, parentheses, brackets, ``< > | \`` and
    non-ASCII characters are percent-encoded, so the result cannot end or
    break a link in chat markdown, Slack mrkdwn or an HTML attribute.
    Applying it twice changes nothing.

    Args:
        url: A URL as a post or the settings gave it, or ``None``.

    """
    if not url:
        return None
    try:
        checked = check_http_url(url.strip())
    except ValueError:
        return None
    parts = urlsplit(checked)
    return urlunsplit(
        (
            parts.scheme,
            parts.netloc,
            quote(parts.path, safe=_PATH_SAFE),
            quote(parts.query, safe=_QUERY_SAFE),
            quote(parts.fragment, safe=_QUERY_SAFE),
        )
    )


def one_line(text: str, limit: int) -> str:
    """Collapse white space and cut to ``limit`` characters (with ``…``)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _value(value: float, rule_kind: str) -> str:
    # A share rule's values are fractions 0-1; people read them as percent.
    return f"{value:.0%}" if rule_kind == NEGATIVE_SHARE else _number(value)


def _moment(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="minutes")


def ticket_link(console_url: str, ticket_id: str) -> str:
    """Return ``{console_url}/console/tickets/{ticket_id}`` (id percent-encoded).

    The console's ticket page, where people sign in to act.
    """
    return f"{console_url.rstrip('/')}/console/tickets/{quote(ticket_id, safe='')}"


def _signal_line(signal: Signal) -> str:
    """One signal in words: rule (kind) keyword: value / threshold (baseline)."""
    kind = _RULE_KIND_LABELS.get(signal.kind, signal.kind)
    keyword = f" {signal.keyword}" if signal.keyword else ""
    line = (
        f"{signal.rule}（{kind}）{keyword}：{_value(signal.last_value, signal.kind)}"
        f" / 阈值 {_value(signal.threshold, signal.kind)}"
    )
    if signal.baseline is not None:
        line += f"，基线 {_value(signal.baseline, signal.kind)}"
    line += f"，首次 {_moment(signal.first_fired)}"
    if signal.provisional:
        line += "（初判，待窗口结束确认）"
    if signal.retracted:
        line += "（已撤回）"
    return line


def build_digest_message(
    items: Sequence[tuple[Ticket, str, int]], *, console_url: str | None = None
) -> Message:
    """Describe several notices in one message, when a channel's limit is reached.

    Args:
        items: ``(ticket, kind, folded)`` per notice, most urgent first;
            ``folded`` counts the changes already folded into that notice.
        console_url: Base URL of the console, for a link to the first ticket.

    Returns:
        A message titled with the highest priority and the number of
        notices, with one fact per notice.

    Raises:
        ValueError: If ``items`` is empty or a kind is unknown.

    """
    if not items:
        raise ValueError("a digest needs at least one notice")
    for _, kind, _ in items:
        if kind not in KIND_LABELS:
            raise ValueError(f"unknown notification kind {kind!r}")
    top = min((ticket.priority for ticket, _, _ in items), key=str)
    updates = sum(1 + folded for _, _, folded in items)
    facts = tuple(
        (
            f"[{ticket.priority}] {KIND_LABELS[kind]}",
            f"{ticket.ticket_id} {ticket.topic} {ticket.rule}"
            + (f"（{len(ticket.signals)} 个信号）" if ticket.signals else "")
            + (f"（另有 {folded} 条更新）" if folded else ""),
        )
        for ticket, kind, folded in items
    )
    title = f"[{top}] 汇总：{len(items)} 个工单的 {updates} 条通知（通道限速）"
    first = items[0][0].ticket_id
    link = ticket_link(console_url, first) if console_url else None
    return Message(title, facts, (), link)


def build_message(
    ticket: Ticket,
    kind: str,
    event: TicketEvent | None = None,
    *,
    console_url: str | None = None,
    folded: int = 0,
) -> Message:
    """Describe a ticket for on-call staff, independent of any channel.

    Args:
        ticket: The ticket, as it is after the change being announced.
        kind: One of :data:`NOTIFY_KINDS`.
        event: The event that caused the notification, if any; its actor,
            action and note are shown.
        console_url: Base URL of the console; adds a link to the ticket.
        folded: Later changes folded into this notice while it waited.

    Returns:
        The message: title, facts, up to three evidence posts and the link.

    Raises:
        ValueError: If ``kind`` is not one of :data:`NOTIFY_KINDS`.

    """
    if kind not in KIND_LABELS:
        raise ValueError(f"unknown notification kind {kind!r}; use {NOTIFY_KINDS}")
    rule_kind = _RULE_KIND_LABELS.get(ticket.kind, ticket.kind)
    reason = f"（{ticket.priority_reason}）" if ticket.priority_reason else ""
    facts: list[tuple[str, str]] = [
        ("工单", ticket.ticket_id),
        ("通知", KIND_LABELS[kind]),
        ("优先级", f"{ticket.priority}{reason}"),
        ("状态", _STATUS_LABELS.get(ticket.status, ticket.status)),
        ("话题", ticket.topic),
        ("规则", f"{ticket.rule}（{rule_kind}）"),
    ]
    if ticket.keyword:
        facts.append(("关键词", ticket.keyword))
    observed = _value(ticket.peak_value, ticket.kind)
    if ticket.opening_value != ticket.peak_value:
        observed += f"（开单时 {_value(ticket.opening_value, ticket.kind)}）"
    facts.append(("观测值", f"峰值 {observed}"))
    facts.append(("阈值", _value(ticket.threshold, ticket.kind)))
    if ticket.expected_value is not None:
        facts.append(("基线", _value(ticket.expected_value, ticket.kind)))
    facts.append(("负责人", f"{ticket.owner or '未分配'}（{ticket.team}）"))
    if ticket.escalation_level:
        contact = ticket.escalation_contact or "无联系人"
        facts.append(("升级", f"第 {ticket.escalation_level} 级：{contact}"))
    if ticket.signals:
        facts.append(("信号数", str(len(ticket.signals))))
        for signal in ticket.signals[:MAX_SIGNALS]:
            facts.append(("信号", _signal_line(signal)))
        if len(ticket.signals) > MAX_SIGNALS:
            facts.append(("信号", f"另有 {len(ticket.signals) - MAX_SIGNALS} 个"))
    if ticket.linked:
        facts.append(("关联工单", "、".join(ticket.linked)))
    facts.append(("触发次数", str(ticket.occurrences)))
    if folded:
        facts.append(("合并", f"本通知合并了另外 {folded} 条更新"))
    facts.append(("确认期限", _moment(ticket.ack_due)))
    if ticket.acknowledged_at is not None:
        facts.append(("确认时间", _moment(ticket.acknowledged_at)))
    facts.append(("解决期限", _moment(ticket.resolve_due)))
    if ticket.resolved_at is not None:
        facts.append(("解决时间", _moment(ticket.resolved_at)))
    if event is not None:
        note = f"：{one_line(event.note, 200)}" if event.note else ""
        facts.append(("操作", f"{event.actor} {event.action}{note}"))
    evidence = tuple(
        (
            (f"@{one_line(post.author, MAX_AUTHOR_CHARS)}：" if post.author else "")
            + one_line(post.excerpt, MAX_EXCERPT_CHARS),
            link_target(post.url),
        )
        for post in ticket.evidence[:MAX_EVIDENCE]
    )
    title = (
        f"[{ticket.priority}] {KIND_LABELS[kind]} {ticket.ticket_id} "
        f"{ticket.topic} {ticket.rule}"
    )
    link = ticket_link(console_url, ticket.ticket_id) if console_url else None
    return Message(title, tuple(facts), evidence, link)
