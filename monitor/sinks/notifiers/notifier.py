"""Sending notifications: retries, rate limits, delivery.

:class:`Notifier` resolves every channel and checks it up front (with
:func:`monitor.config.channels.check_channel_settings`, the check the rules
file loader uses too), then sends each
notification to its channels concurrently over one :class:`aiohttp.ClientSession`
(email over SMTP with aiosmtplib), and reports one :class:`Delivery` each.

SMS channels (``aliyun_sms``, ``http_sms``; :mod:`.sms`) send one request
per mobile, each mobile at most ``per_recipient_per_hour`` times an hour
per channel (on top of the channel's per-minute limit); a notice whose every
mobile is over it is ``rate_limited`` and not retried.

Personal notices: a channel name ``@<person>/email`` or ``@<person>/sms``
(queued by the ticket service, see
:class:`~monitor.config.rules.PersonalNotices`) is sent with the channel the
rules file's ``personal:`` names for that way, to the person's ``email`` or
``mobile`` from the owners book as it is when sent (:meth:`Notifier.use_directory`;
the notice sender hands in the current rules file's each round). DingTalk
and Feishu group notices @mention the assignee (:mod:`.mentions`) when
``personal: chat:`` is on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import aiohttp
import aiosmtplib
from yarl import URL

from monitor.analysis.tickets.model import Ticket, TicketEvent
from monitor.config.channels import check_channel_settings
from monitor.config.rules import (
    Channel,
    Owner,
    PersonalNotices,
    parse_personal_channel,
)
from monitor.errors import ConfigError
from monitor.sinks.notifiers.mentions import (
    dingtalk_mention,
    dingtalk_targets,
    feishu_mention,
    feishu_target,
)
from monitor.sinks.notifiers.messages import (
    KIND_LABELS,
    Message,
    build_digest_message,
    build_message,
    link_target,
)
from monitor.sinks.notifiers.payloads import (
    DeliveryError,
    check_reply,
    dingtalk_payload,
    dingtalk_url,
    email_bytes,
    email_message,
    encode_json,
    feishu_payload,
    slack_payload,
    webhook_digest_payload,
    webhook_headers,
    webhook_payload,
    wecom_payload,
)
from monitor.sinks.notifiers.sms import (
    DEFAULT_MAX_CHARS,
    DEFAULT_PER_RECIPIENT_PER_HOUR,
    SMS_KINDS,
    aliyun_request,
    check_aliyun_reply,
    check_gateway_reply,
    fields_of,
    gateway_request,
    mask_mobile,
    sms_text,
)
from monitor.sinks.retry import backoff_delays

if TYPE_CHECKING:
    from monitor.sinks.notifiers.messages import ActionLink

log = logging.getLogger(__name__)

SENT = "sent"
FAILED = "failed"
RATE_LIMITED = "rate_limited"
SKIPPED = "skipped"
DELIVERY_STATUSES = (SENT, FAILED, RATE_LIMITED, SKIPPED)

#: Bytes of a reply body read, for the check and the error text.
_REPLY_BYTES = 64 * 1024
_ROBOT_KINDS = frozenset({"dingtalk", "feishu", "wecom", "slack"})
#: Messages a minute each vendor's robot takes (DingTalk and WeCom: 20 per
#: robot; Feishu: 100, and 5 a second). A channel's limit is the smaller of
#: this and the notifier's ``rate_per_minute``.
VENDOR_LIMITS = {"dingtalk": 20, "wecom": 20, "feishu": 100}
#: What a Message-ID's left part may hold besides letters, digits and the
#: ``. - _ ~`` quote() keeps (RFC 5322 atext; ``%`` is one too): a personal
#: channel's delivery id (``T-1#n2@@王工/email``) has ``@`` and non-ASCII
#: text, which the header may not carry (it failed to encode at all).
_MESSAGE_ID_SAFE = "!#$&'*+/=?^`{|}"
#: Group notices that @mention the assignee, and the ``personal: on:``
#: occasion each needs (``repeat`` needs none: nobody acknowledged yet).
_MENTION_OCCASIONS = {
    "opened": "opened",
    "reopened": "reopened",
    "escalated": "escalated",
    "repeat": None,
}


class LinkIssuer(Protocol):
    """Issues one-tap action links for a chat notice (``monitor.web.links``)."""

    def buttons(
        self, ticket: Ticket, channel: str, actor: str | None
    ) -> tuple[ActionLink, ...]:
        """Return the action links of a notice to ``channel`` about ``ticket``."""
        ...


@dataclass(frozen=True)
class Delivery:
    """Outcome of one notification on one channel.

    Attributes:
        channel: Channel name.
        status: ``sent``, ``failed``, ``rate_limited`` or ``skipped``.
        attempts: Requests made (0 when rate limited or skipped).
        error: The last error when not sent, else empty.
        latency_seconds: From the first attempt to the outcome, retries and
            the waits between them included.
        reached: When not sent: :func:`recipient_digest` of each recipient
            that took the message all the same (a group SMS that reached
            some mobiles), those passed in included; hand them back to the
            next :meth:`Notifier.send` of the same delivery so nobody gets
            it twice.

    """

    channel: str
    status: str
    attempts: int
    error: str = ""
    latency_seconds: float = 0.0
    retryable: bool = True
    reached: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        """True if the channel accepted it (2xx and the vendor's OK)."""
        return self.status == SENT


def recipient_digest(delivery_id: str, recipient: str) -> str:
    """Return a short digest naming one recipient of one delivery.

    What a ticket keeps of the mobiles a failed group SMS reached: salted by
    the delivery id, so the stored value is not the number and differs from
    one delivery to the next.
    """
    data = f"{delivery_id}\n{recipient}".encode()
    return hashlib.sha256(data).hexdigest()[:16]


class TokenBucket:
    """Allows ``rate_per_minute`` events a minute, in bursts of up to that many.

    Args:
        rate_per_minute: Tokens added per minute and the bucket's size (>= 1).
        clock: Monotonic seconds; injected by tests.

    Raises:
        ValueError: If ``rate_per_minute`` < 1.

    """

    def __init__(
        self, rate_per_minute: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate_per_minute < 1:
            raise ValueError(f"rate_per_minute must be >= 1, got {rate_per_minute}")
        self.capacity = float(rate_per_minute)
        self.tokens = self.capacity
        self._per_second = rate_per_minute / 60.0
        self._clock = clock
        self._updated = clock()

    def take(self) -> bool:
        """Take a token if there is one; True if the event may go ahead."""
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self.tokens = min(self.capacity, self.tokens + elapsed * self._per_second)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class HourlyRecipients:
    """At most ``limit`` messages per recipient in any hour (a sliding window).

    Args:
        limit: Messages per recipient per 3600 seconds (>= 1).
        clock: Monotonic seconds; injected by tests.

    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}

    def allows(self, recipient: str) -> bool:
        """Return True if one more message to ``recipient`` may go now."""
        sent = self._sent.get(recipient)
        if sent is None:
            return True
        now = self._clock()
        while sent and now - sent[0] >= 3600.0:
            sent.popleft()
        if not sent:
            del self._sent[recipient]
            return True
        return len(sent) < self.limit

    def take(self, recipient: str) -> None:
        """Record one message sent to ``recipient`` now."""
        self._sent.setdefault(recipient, deque()).append(self._clock())


class _RecipientLimited(DeliveryError):
    """Every recipient of an SMS is over its hourly limit."""


class MinuteWindow:
    """At most ``limit`` messages in any 60 seconds (a sliding window).

    Unlike a token bucket, this never lets more than ``limit`` through within
    one minute, which is how the robots count (DingTalk: 20 a minute).

    Args:
        limit: Messages per 60 seconds (>= 1).
        clock: Monotonic seconds; injected by tests.

    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self._clock = clock
        self._sent: deque[float] = deque()

    def free(self) -> int:
        """Return the messages that may be sent now."""
        now = self._clock()
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        return self.limit - len(self._sent)

    def take(self) -> None:
        """Record one message sent now."""
        self._sent.append(self._clock())

    def next_free_in(self) -> float:
        """Return seconds until a slot frees (0 if one is free now)."""
        if self.free() > 0:
            return 0.0
        return max(0.0, 60.0 - (self._clock() - self._sent[0]))


# --- the notifier -------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    name: str
    kind: str
    settings: Mapping[str, Any]
    timeout: float
    #: The configured channel it sends with (a personal target's differs).
    base: str = ""


@dataclass(frozen=True)
class _Notice:
    ticket: Ticket
    kind: str
    event: TicketEvent | None
    message: Message
    delivery_id: str
    digest: tuple[tuple[Ticket, str, int], ...] = ()
    #: recipient_digest of the recipients an earlier round reached.
    reached: frozenset[str] = frozenset()
    #: The assignee's contacts, to @mention in a DingTalk/Feishu notice.
    mention: Mapping[str, str] = field(default_factory=dict)
    mention_name: str = ""


def _http_request(
    target: _Target, notice: _Notice, now: float
) -> tuple[str, bytes, dict[str, str]]:
    """Return URL, body and headers of one attempt; ``now`` is unix seconds."""
    settings = target.settings
    json_headers = {"Content-Type": "application/json; charset=utf-8"}
    if target.kind == "webhook":
        sent_at = datetime.fromtimestamp(now, timezone.utc)
        if notice.digest:
            payload = webhook_digest_payload(notice.digest, sent_at=sent_at)
        else:
            payload = webhook_payload(
                notice.ticket, notice.kind, notice.event, sent_at=sent_at
            )
        body = encode_json(payload)
        headers = webhook_headers(
            body,
            delivery_id=notice.delivery_id,
            timestamp=int(now),
            secret=settings.get("secret") or None,
            extra=settings["headers"],
        )
        return settings["url"], body, headers
    webhook = settings["webhook"]
    if target.kind == "dingtalk":
        url = dingtalk_url(webhook, settings.get("secret"), int(now * 1000))
        payload = dingtalk_payload(
            notice.message, at_mobiles=settings.get("at_mobiles", ())
        )
        if notice.mention:
            payload = dingtalk_mention(payload, *dingtalk_targets(notice.mention))
        return url, encode_json(payload), json_headers
    if target.kind == "feishu":
        payload = feishu_payload(
            notice.message, secret=settings.get("secret"), timestamp=int(now)
        )
        open_id = feishu_target(notice.mention) if notice.mention else None
        if open_id:
            payload = feishu_mention(payload, open_id, notice.mention_name)
    elif target.kind == "wecom":
        payload = wecom_payload(
            notice.message, mentioned_list=settings.get("mentioned_list", ())
        )
    else:
        payload = slack_payload(notice.message, channel=settings.get("channel"))
    return webhook, encode_json(payload), json_headers


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the backoff applies instead


#: Channel settings an error text must not repeat (a URL may hold the token).
_SECRET_SETTINGS = (
    "url",
    "webhook",
    "secret",
    "password",
    "endpoint",
    "access_key_id",
    "access_key_secret",
)


def _redact(text: str, settings: Mapping[str, Any]) -> str:
    """Replace the channel's URL and secrets in an error text with their names."""
    for key in _SECRET_SETTINGS:
        value = settings.get(key)
        if isinstance(value, str) and value:
            text = text.replace(value, f"<{key}>")
    return text


def _as_delivery_error(exc: Exception, timeout: float) -> DeliveryError:
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        transient = 400 <= exc.code < 500
        return DeliveryError(f"SMTP {exc.code}: {exc.message}", retryable=transient)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in exc.recipients]
        return DeliveryError(
            f"SMTP recipients refused ({', '.join(map(str, codes))})",
            retryable=all(400 <= code < 500 for code in codes),
        )
    if isinstance(exc, TimeoutError):
        return DeliveryError(f"timed out after {timeout:g} s", retryable=True)
    if isinstance(exc, aiohttp.ClientError | OSError | aiosmtplib.SMTPException):
        return DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
    log.exception("notification failed unexpectedly")
    return DeliveryError(f"{type(exc).__name__}: {exc}", retryable=False)


class Notifier:
    """Sends ticket notifications to configured channels.

    Args:
        channels: Channels by name, as loaded from the rules file.
        env: The environment that ``${NAME}`` references resolve from.
        console_url: Base URL of the console, for a link to the ticket.
        timeout: Seconds per request (a webhook's ``timeout`` overrides it).
        retries: Retries after the first attempt, so at most ``retries + 1``
            attempts per channel and notification.
        backoff: Seconds before the first retry; doubles for each next one.
        max_backoff: Most seconds between two attempts.
        rate_per_minute: Notifications a minute per channel (>= 1); one
            notification takes one token however many attempts it needs.
        clock: Monotonic seconds for the rate limit; injected by tests.
        owners: The owners book (contacts by person), for personal notices
            and @mentions; :meth:`use_directory` replaces it.
        personal: The rules file's ``personal:`` section; ``None``: no
            personal notices and no @mentions.
        link_issuer: Issues the one-tap action links of DingTalk, Feishu,
            WeCom and Slack notices; ``None``: no buttons.
        trust_env: HTTP channels go through the proxies of ``HTTP_PROXY``,
            ``HTTPS_PROXY`` and ``NO_PROXY`` (credentials from
            ``~/.netrc``); off, every request goes direct. Email (SMTP)
            always goes direct.

    Raises:
        ConfigError: One line per problem, each naming its channel: a missing
            environment variable or a bad setting.
        ValueError: If a numeric argument is out of range.

    """

    def __init__(
        self,
        channels: Mapping[str, Channel],
        env: Mapping[str, str],
        *,
        console_url: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        rate_per_minute: int = 20,
        clock: Callable[[], float] = time.monotonic,
        owners: Mapping[str, Owner] | None = None,
        personal: PersonalNotices | None = None,
        link_issuer: LinkIssuer | None = None,
        trust_env: bool = False,
    ) -> None:
        if timeout <= 0 or retries < 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("timeout must be > 0; retries and backoffs >= 0")
        self.console_url = console_url
        self.timeout = timeout
        self.retries = retries
        self.max_backoff = max_backoff
        self._delay = backoff_delays(backoff, max_backoff)
        self._buckets = {name: TokenBucket(rate_per_minute, clock) for name in channels}
        self._windows = {
            name: MinuteWindow(
                min(rate_per_minute, VENDOR_LIMITS.get(channel.kind, rate_per_minute)),
                clock,
            )
            for name, channel in channels.items()
        }
        self._targets: dict[str, _Target] = {}
        self._recipients: dict[str, HourlyRecipients] = {}
        self.owners: Mapping[str, Owner] = owners or {}
        self.personal = personal
        self.link_issuer = link_issuer
        self._session: aiohttp.ClientSession | None = None
        self.trust_env = trust_env
        problems: list[str] = []
        for name, channel in channels.items():
            try:
                settings = check_channel_settings(channel.kind, channel.resolve(env))
            except ConfigError as exc:
                problems.extend(exc.problems)
            except ValueError as exc:
                problems.append(f"channel {name!r} ({channel.kind}): {exc}")
            else:
                timeout = settings.get("timeout") or self.timeout
                self._targets[name] = _Target(
                    name, channel.kind, settings, timeout, base=name
                )
                if channel.kind in SMS_KINDS:
                    self._recipients[name] = HourlyRecipients(
                        settings.get("per_recipient_per_hour")
                        or DEFAULT_PER_RECIPIENT_PER_HOUR,
                        clock,
                    )
        if problems:
            raise ConfigError(problems)

    def use_directory(
        self, owners: Mapping[str, Owner], personal: PersonalNotices | None
    ) -> None:
        """Use this owners book and ``personal:`` section from now on.

        The notice sender calls it with the current rules file each round, so
        a reloaded file's contacts are used for the next notices.
        """
        self.owners = owners
        self.personal = personal

    def _resolve(self, name: str) -> tuple[_Target | None, str]:
        """Return the target a channel name sends to, or why there is none.

        A personal name ``@<person>/<via>`` is the ``personal:`` channel for
        ``via`` with the person's address (``email``) or mobile (``sms``)
        as the only recipient.
        """
        target = self._targets.get(name)
        if target is not None:
            return target, ""
        parsed = parse_personal_channel(name)
        if parsed is None:
            return None, f"no channel named {name!r}"
        person, via = parsed
        base_name = self.personal.channel_for(via) if self.personal else None
        base = self._targets.get(base_name) if base_name else None
        if base is None:
            return None, f"no personal {via} channel configured"
        owner = self.owners.get(person)
        contact = {"email": "email", "sms": "mobile"}.get(via, "")
        address = owner.contacts.get(contact, "").strip() if owner else ""
        if not address:
            return None, f"{person} has no {contact} in the owners book"
        settings = {**base.settings, "to": [address]}
        return dataclasses.replace(base, name=name, settings=settings), ""

    def _base(self, name: str) -> str:
        """Return the configured channel whose limits a name counts against."""
        if name in self._targets:
            return name
        parsed = parse_personal_channel(name)
        if parsed is not None and self.personal is not None:
            return self.personal.channel_for(parsed[1]) or name
        return name

    def _message(
        self,
        ticket: Ticket,
        kind: str,
        event: TicketEvent | None,
        folded: int = 0,
    ) -> Message:
        """Build the message of a notice of ``kind``."""
        return build_message(
            ticket, kind, event, console_url=self.console_url, folded=folded
        )

    def _for_target(self, target: _Target, notice: _Notice) -> _Notice:
        """Add the action buttons and the assignee's @mention a target takes."""
        if target.kind in _ROBOT_KINDS and self.link_issuer and not notice.digest:
            try:
                actions = tuple(
                    self.link_issuer.buttons(
                        notice.ticket, target.name, notice.ticket.owner
                    )
                )
            except Exception:
                log.exception("action links for %s failed", notice.ticket.ticket_id)
            else:
                message: Any = notice.message
                notice = dataclasses.replace(
                    notice, message=dataclasses.replace(message, actions=actions)
                )
        owner = notice.ticket.owner
        personal = self.personal
        if (
            target.kind in ("dingtalk", "feishu")
            and personal is not None
            and personal.chat
            and owner
            and owner in self.owners
            and not notice.digest
            and notice.kind in _MENTION_OCCASIONS
        ):
            occasion = _MENTION_OCCASIONS[notice.kind]
            if occasion is None or occasion in personal.on:
                notice = dataclasses.replace(
                    notice,
                    mention=dict(self.owners[owner].contacts),
                    mention_name=owner,
                )
        return notice

    async def start(self) -> None:
        """Open the HTTP session every channel shares (idempotent)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "monitor-notifier"},
                trust_env=self.trust_env,
            )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Notifier:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def notify(
        self,
        ticket: Ticket,
        kind: str,
        channel_names: Sequence[str],
        event: TicketEvent | None = None,
    ) -> list[Delivery]:
        """Send one notification to the named channels, all at once.

        A channel's failure never raises; it is reported in its
        :class:`Delivery`. A name given twice is delivered to once.

        Args:
            ticket: The ticket, as it is after the change.
            kind: One of ``NOTIFY_KINDS``.
            channel_names: Channels to notify.
            event: The event behind the notification, if any.

        Returns:
            One delivery per distinct name, in the order given; names of no
            configured channel are ``skipped``.

        Raises:
            ValueError: If ``kind`` is not one of ``NOTIFY_KINDS``.
            RuntimeError: If :meth:`start` was not called.

        """
        message = self._message(ticket, kind, event)
        if self._session is None:
            raise RuntimeError("call Notifier.start() before notify()")
        names = list(dict.fromkeys(channel_names))
        deliveries = await asyncio.gather(
            *(
                self._deliver(
                    name, _Notice(ticket, kind, event, message, uuid.uuid4().hex)
                )
                for name in names
            )
        )
        return list(deliveries)

    # -- the outbox sender's interface ---------------------------------------------

    def free(self, name: str) -> int:
        """Return the messages channel ``name`` may take now.

        Its per-minute limit less what it took in the last 60 s; a channel
        not configured has room (its send is ``skipped`` anyway).
        """
        window = self._windows.get(self._base(name))
        return 1_000_000 if window is None else window.free()

    def next_free_in(self, name: str) -> float:
        """Return seconds until channel ``name`` has room (0 if it has now)."""
        window = self._windows.get(self._base(name))
        return 0.0 if window is None else window.next_free_in()

    async def send(
        self,
        name: str,
        ticket: Ticket,
        kind: str,
        *,
        delivery_id: str,
        event: TicketEvent | None = None,
        folded: int = 0,
        reached: Collection[str] = (),
    ) -> Delivery:
        """Send one notice to one channel with a stable delivery id.

        The caller (the outbox sender) keeps within :meth:`free`; this counts
        the message against the channel's minute and never refuses it.

        Args:
            name: Channel name.
            ticket: The ticket as it is now.
            kind: One of ``NOTIFY_KINDS``.
            delivery_id: Stays the same on every retry and after a restart
                (``X-Monitor-Delivery``, the email's Message-ID).
            event: The event behind it, if known.
            folded: Changes folded into this notice while it waited.
            reached: ``Delivery.reached`` of an earlier failed send of the
                same delivery: those recipients are not sent it again.

        Returns:
            The delivery; ``retryable`` is False when retrying cannot help.

        """
        if self._session is None:
            raise RuntimeError("call Notifier.start() before send()")
        message = self._message(ticket, kind, event, folded)
        notice = _Notice(
            ticket, kind, event, message, delivery_id, reached=frozenset(reached)
        )
        return await self._deliver(name, notice, limited=False)

    async def send_digest(
        self,
        name: str,
        items: Sequence[tuple[Ticket, str, int]],
        *,
        delivery_id: str,
    ) -> Delivery:
        """Send several notices to one channel as one digest message.

        Args:
            name: Channel name.
            items: ``(ticket, kind, folded)`` per notice, most urgent first.
            delivery_id: Id of the digest (stable for the same notices).

        """
        if self._session is None:
            raise RuntimeError("call Notifier.start() before send_digest()")
        message = build_digest_message(items, console_url=self.console_url)
        first = items[0]
        notice = _Notice(
            first[0], first[1], None, message, delivery_id, digest=tuple(items)
        )
        return await self._deliver(name, notice, limited=False)

    async def _deliver(
        self, name: str, notice: _Notice, *, limited: bool = True
    ) -> Delivery:
        target, missing = self._resolve(name)
        if target is None:
            return Delivery(name, SKIPPED, 0, error=missing, retryable=False)
        notice = self._for_target(target, notice)
        if limited:
            bucket = self._buckets[target.base]
            if not bucket.take():
                log.warning("channel %s: rate limited, %s not sent", name, notice.kind)
                limit = f"over {bucket.capacity:.0f} notifications per minute"
                return Delivery(name, RATE_LIMITED, 0, error=limit)
        self._windows[target.base].take()
        started = time.perf_counter()
        attempts = 0
        sent_to: set[str] = set()  # SMS mobiles done: a retry skips them
        while True:
            attempts += 1
            try:
                await self._attempt(target, notice, sent_to)
            except _RecipientLimited as exc:
                log.warning("channel %s: %s", name, exc.reason)
                elapsed = time.perf_counter() - started
                return Delivery(
                    name, RATE_LIMITED, attempts, exc.reason, elapsed, retryable=False
                )
            except Exception as exc:  # a channel's failure must not escape
                failure = _as_delivery_error(exc, target.timeout)
            else:
                elapsed = time.perf_counter() - started
                return Delivery(name, SENT, attempts, latency_seconds=elapsed)
            failure.reason = _redact(failure.reason, target.settings)
            reached = notice.reached | {
                recipient_digest(notice.delivery_id, mobile) for mobile in sent_to
            }
            if not failure.retryable or attempts > self.retries:
                log.warning(
                    "channel %s: %s of %s failed after %d attempt(s): %s",
                    name,
                    notice.kind,
                    notice.ticket.ticket_id,
                    attempts,
                    failure.reason,
                )
                elapsed = time.perf_counter() - started
                return Delivery(
                    name,
                    FAILED,
                    attempts,
                    failure.reason,
                    elapsed,
                    retryable=failure.retryable,
                    reached=tuple(sorted(reached)),
                )
            backoff = self._delay(attempts - 1)
            wait = min(self.max_backoff, max(failure.retry_after or 0.0, backoff))
            log.info("channel %s: %s; retry in %.2f s", name, failure.reason, wait)
            await asyncio.sleep(wait)

    async def _attempt(
        self, target: _Target, notice: _Notice, sent_to: set[str] | None = None
    ) -> None:
        if target.kind == "email":
            await self._send_email(target, notice)
            return
        if target.kind in SMS_KINDS:
            await self._send_sms(target, notice, set() if sent_to is None else sent_to)
            return
        url, body, headers = _http_request(target, notice, time.time())
        await self._post(target, url, body, headers)

    async def _post(
        self,
        target: _Target,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> None:
        if self._session is None:
            raise RuntimeError("the notifier was closed")
        async with self._session.post(
            URL(url, encoded=True),
            data=body,
            headers=dict(headers),
            timeout=aiohttp.ClientTimeout(total=target.timeout),
            allow_redirects=False,  # a redirected POST would arrive as a GET
        ) as response:
            raw = await response.content.read(_REPLY_BYTES)
            text = raw.decode(errors="replace")
            if target.kind == "aliyun_sms":
                check_aliyun_reply(response.status, text)
            elif target.kind == "http_sms":
                check_gateway_reply(response.status, text)
            else:
                check_reply(
                    target.kind,
                    response.status,
                    text,
                    retry_after=_retry_after(response.headers),
                )

    async def _send_sms(
        self, target: _Target, notice: _Notice, sent_to: set[str]
    ) -> None:
        """Send one SMS per mobile not done yet, each within its hourly limit.

        Raises:
            DeliveryError: The first mobile's failure (those sent stay done,
                so a retry does not send them twice).
            _RecipientLimited: Every remaining mobile is over its limit.

        """
        settings = target.settings
        mobiles = [str(m).strip() for m in settings.get("to") or ()]
        if not mobiles:
            raise DeliveryError(
                "the SMS channel has no mobiles (to:) for group notices",
                retryable=False,
            )
        ticket = notice.ticket
        text = sms_text(
            notice.message.title,
            ticket.owner,
            link_target(notice.message.link),
            settings.get("max_chars") or DEFAULT_MAX_CHARS,
        )
        fields = fields_of(
            text,
            ticket.ticket_id,
            str(ticket.priority),
            KIND_LABELS.get(notice.kind, ""),
            ticket.topic,
            ticket.rule,
            ticket.owner,
        )
        limit = self._recipients[target.base]
        limited = []
        for mobile in mobiles:
            if mobile in sent_to:
                continue
            if recipient_digest(notice.delivery_id, mobile) in notice.reached:
                sent_to.add(mobile)  # reached by an earlier round
                continue
            if not limit.allows(mobile):
                limited.append(mobile)
                continue
            now = time.time()
            if target.kind == "aliyun_sms":
                url, body, headers = aliyun_request(
                    settings,
                    mobile,
                    fields,
                    now=now,
                    nonce=uuid.uuid4().hex,
                    out_id=notice.delivery_id,
                )
            else:
                url, body, headers = gateway_request(
                    settings, mobile, fields, now=now, delivery_id=notice.delivery_id
                )
            await self._post(target, url, body, headers)
            limit.take(mobile)
            sent_to.add(mobile)
        if limited and not sent_to:
            masked = ", ".join(mask_mobile(m) for m in limited)
            raise _RecipientLimited(
                f"over {limit.limit} SMS per hour to {masked}; not sent",
                retryable=False,
            )
        if limited:
            log.warning(
                "channel %s: %d mobile(s) over %d SMS per hour skipped",
                target.name,
                len(limited),
                limit.limit,
            )

    async def _send_email(self, target: _Target, notice: _Notice) -> None:
        settings = target.settings
        email = email_message(
            notice.message,
            sender=settings["from"],
            recipients=settings["to"],
            sent_at=datetime.now(timezone.utc),
            delivery_id=quote(notice.delivery_id, safe=_MESSAGE_ID_SAFE),
        )
        refused, _ = await aiosmtplib.send(
            email_bytes(email),
            sender=settings["from"],
            recipients=settings["to"],
            hostname=settings["smtp_host"],
            port=settings.get("smtp_port"),
            username=settings.get("username") or None,
            password=settings.get("password") or None,
            start_tls=settings.get("starttls"),
            use_tls=bool(settings.get("use_tls")),
            timeout=target.timeout,
        )
        if refused:
            # The others got it; a retry would send them a second copy.
            log.warning("channel %s: recipients refused: %s", target.name, refused)
