"""One-tap action links for chat notices: signed, short-lived, single-use tokens.

A chat card (DingTalk ActionCard, Feishu card, WeCom template card) carries
buttons for the two actions that are safe to take from a phone without
signing in: ``acknowledge`` and ``start``. Each button opens
``<console_url>/console/a#t=<token>``; the token is in the URL *fragment*, so
it never reaches a server log, a proxy or a ``Referer``: the console page
reads it and POSTs it to the action-link API (:mod:`monitor.web.actionlinks`).

Token format (version 1)::

    v1.<key id>.<link id>.<sig>

* ``key id``: which key signed it (``[A-Za-z0-9_-]{1,32}``), so keys rotate.
* ``link id``: the claims, self-contained: base64url (no padding) of the
  compact JSON ``{"t": ticket id, "a": action, "u": intended actor,
  "c": channel, "r": ticket revision when issued, "e": expiry (unix s),
  "n": nonce}``. The nonce (128 random bits, base64url) is the link's
  identity: it is what the ledger records as used
  (:class:`~monitor.sinks.elasticsearch.links.LinkLedger`, document id).
* ``sig``: base64url (no padding) of HMAC-SHA256(key, ``"v1.<key id>.<link
  id>"``): it covers the version, the key id and every claim.

Nothing is stored when a link is issued; the token carries its claims and
the signature vouches for them. Verification compares the whole signature
text in constant time, so changing any byte of a token (padding bits too)
refuses it.

Keys come from ``MONITOR_ACTION_LINK_KEYS``: ``id:secret,id:secret,...``.
Each secret is at least 32 bytes (UTF-8; e.g. ``openssl rand -base64 32``)
and holds no comma or white space; the first key signs, every key verifies
(rotate by putting a new key first and dropping the old one after the link
lifetime). Secrets are never logged and never appear in an error or a
``repr``.

Links are issued only when the console URL is ``https`` or loopback
``http`` (``127.0.0.0/8``, ``localhost``, ``[::1]``): a token sent to a
plain-http host could be read on the way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from monitor.analysis.tickets.lifecycle import ACTION_SOURCES
from monitor.analysis.tickets.model import Ticket, TicketAction
from monitor.errors import MonitorError
from monitor.sinks.notifiers.messages import ActionLink, link_target

log = logging.getLogger(__name__)

VERSION = "v1"
#: The actions a link may carry, and the label of each button.
LINK_ACTIONS: Mapping[str, str] = {
    TicketAction.ACKNOWLEDGE.value: "确认",
    TicketAction.START.value: "开始处理",
}
#: Shortest secret accepted, in bytes.
MIN_SECRET_BYTES = 32
#: Default lifetime of a link.
DEFAULT_TTL = timedelta(hours=1)
#: Longest token :meth:`ActionLinkVerifier.verify` reads (longer is malformed).
MAX_TOKEN_CHARS = 4096
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64 = re.compile(r"[A-Za-z0-9_-]+")
_NONCE_BYTES = 16


def utc_now() -> datetime:
    """Return the current time, UTC, timezone-aware."""
    return datetime.now(timezone.utc)


# --- errors -------------------------------------------------------------------


class ActionLinkError(MonitorError):
    """A token is refused. The message is safe to show; it never holds a key.

    Attributes:
        status: The HTTP status the action-link API answers with.
        code: A short machine-readable reason (``malformed``, ``forged``,
            ``unknown_key``, ``expired``).

    """

    status = 400
    code = "malformed"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class MalformedLink(ActionLinkError):
    """The token is not a v1 action-link token (cut, garbled, wrong version)."""


class ForgedLink(ActionLinkError):
    """The signature does not match: the token was changed or not made by us."""

    status = 403
    code = "forged"


class UnknownKey(ActionLinkError):
    """The token names a key id this server does not have (rotated out?)."""

    status = 403
    code = "unknown_key"


class ExpiredLink(ActionLinkError):
    """An authentic token past its expiry.

    Attributes:
        claims: What the token says (its signature checked out).

    """

    status = 403
    code = "expired"

    def __init__(self, message: str, claims: Claims) -> None:
        self.claims = claims
        super().__init__(message)


class ActionLinkConfigError(MonitorError, ValueError):
    """``MONITOR_ACTION_LINK_KEYS`` is malformed (the message names no secret)."""


# --- keys ---------------------------------------------------------------------


class ActionLinkKeys:
    """The HMAC keys of action links: the first signs, all verify.

    Build it with :meth:`parse`. Its ``repr`` lists the key ids only.
    """

    def __init__(self, keys: Mapping[str, bytes], signing: str) -> None:
        if signing not in keys:
            raise ActionLinkConfigError("the signing key must be one of the keys")
        self._keys = dict(keys)
        self.signing = signing

    @classmethod
    def parse(cls, spec: str) -> ActionLinkKeys:
        """Read ``id:secret,id:secret,...`` (the first key signs).

        Raises:
            ActionLinkConfigError: Empty, a malformed entry, a repeated or
                malformed key id, or a secret under 32 bytes; the message
                names the entry by position and key id, never the secret.

        """
        if not isinstance(spec, str) or not spec.strip():
            raise ActionLinkConfigError("action link keys: none given; use id:secret")
        keys: dict[str, bytes] = {}
        first: str | None = None
        for position, entry in enumerate(spec.split(","), 1):
            entry = entry.strip()
            key_id, colon, secret = entry.partition(":")
            key_id = key_id.strip()
            where = f"action link key {position}"
            if not colon:
                raise ActionLinkConfigError(f"{where}: expected id:secret")
            if not _KEY_ID.fullmatch(key_id):
                raise ActionLinkConfigError(
                    f"{where}: the key id must be 1-32 of A-Z a-z 0-9 _ -"
                )
            if key_id in keys:
                raise ActionLinkConfigError(f"{where}: key id {key_id} repeats")
            if secret != secret.strip() or any(c.isspace() for c in secret):
                raise ActionLinkConfigError(
                    f"{where} ({key_id}): the secret must not hold white space"
                )
            raw = secret.encode()
            if len(raw) < MIN_SECRET_BYTES:
                raise ActionLinkConfigError(
                    f"{where} ({key_id}): the secret must be at least "
                    f"{MIN_SECRET_BYTES} bytes"
                )
            keys[key_id] = raw
            first = first or key_id
        assert first is not None
        return cls(keys, first)

    @property
    def ids(self) -> tuple[str, ...]:
        """The key ids, the signing one first."""
        return (self.signing, *(k for k in self._keys if k != self.signing))

    def secret(self, key_id: str) -> bytes | None:
        """Return the secret of ``key_id``, or ``None`` if there is no such key."""
        return self._keys.get(key_id)

    def __repr__(self) -> str:
        return f"ActionLinkKeys(ids={self.ids!r})"

    __str__ = __repr__


# --- claims and tokens --------------------------------------------------------


@dataclass(frozen=True)
class Claims:
    """What an action link says, once its signature is checked.

    Attributes:
        ticket_id: The ticket.
        action: ``acknowledge`` or ``start``.
        actor: Whom the link was issued to (recorded on the audit event).
        channel: The channel the link was sent to.
        revision: The ticket's revision when the link was issued.
        expires_at: When it stops working (UTC).
        link_id: The link's random identity (what is recorded as used).
        key_id: The key that signed it.

    """

    ticket_id: str
    action: str
    actor: str
    channel: str
    revision: int
    expires_at: datetime
    link_id: str
    key_id: str = ""

    @property
    def note(self) -> str:
        """The audit note: ``via link issued to <actor> in <channel>``."""
        return f"via link issued to {self.actor} in {self.channel}"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signed: str) -> str:
    return _b64encode(hmac.new(secret, signed.encode(), hashlib.sha256).digest())


def encode_token(keys: ActionLinkKeys, claims: Claims) -> str:
    """Sign ``claims`` with the signing key: ``v1.<key id>.<link id>.<sig>``."""
    payload = {
        "t": claims.ticket_id,
        "a": claims.action,
        "u": claims.actor,
        "c": claims.channel,
        "r": claims.revision,
        "e": int(claims.expires_at.timestamp()),
        "n": claims.link_id,
    }
    body = _b64encode(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    )
    key_id = keys.signing
    secret = keys.secret(key_id)
    assert secret is not None
    signed = f"{VERSION}.{key_id}.{body}"
    return f"{signed}.{_sign(secret, signed)}"


def decode_token(keys: ActionLinkKeys, token: str, now: datetime) -> Claims:
    """Check a token's signature and expiry and return its claims.

    Raises:
        MalformedLink: Not a v1 token, or its claims are not as issued.
        UnknownKey: Its key id is not among ``keys``.
        ForgedLink: The signature does not match.
        ExpiredLink: Authentic but expired (at or after its expiry).

    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise MalformedLink("not an action link")
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise MalformedLink("not an action link (expected v1.<key>.<link>.<sig>)")
    _, key_id, body, signature = parts
    if not _KEY_ID.fullmatch(key_id):
        raise MalformedLink("not an action link (bad key id)")
    secret = keys.secret(key_id)
    if secret is None:
        raise UnknownKey(
            "this link was signed with a key this server no longer has; "
            "open the ticket in the console"
        )
    expected = _sign(secret, f"{VERSION}.{key_id}.{body}")
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise ForgedLink("this link has been altered or was not issued here")
    try:
        payload = json.loads(_b64decode(body))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise MalformedLink("the link's claims are unreadable") from None
    claims = _claims(payload, key_id)
    if now >= claims.expires_at:
        raise ExpiredLink(
            f"this link expired at {claims.expires_at.isoformat()}; "
            "open the ticket in the console",
            claims,
        )
    return claims


def _claims(payload: Any, key_id: str) -> Claims:
    if not isinstance(payload, dict):
        raise MalformedLink("the link's claims are unreadable")
    texts = {name: payload.get(name) for name in ("t", "a", "u", "c", "n")}
    if not all(isinstance(value, str) and value for value in texts.values()):
        raise MalformedLink("the link's claims are incomplete")
    revision, expiry = payload.get("r"), payload.get("e")
    for number in (revision, expiry):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise MalformedLink("the link's claims are incomplete")
    assert isinstance(revision, int) and isinstance(expiry, int)
    if texts["a"] not in LINK_ACTIONS:
        raise MalformedLink(f"links cannot {texts['a']!r} a ticket")
    try:
        expires_at = datetime.fromtimestamp(expiry, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise MalformedLink("the link's expiry is out of range") from None
    return Claims(
        ticket_id=str(texts["t"]),
        action=str(texts["a"]),
        actor=str(texts["u"]),
        channel=str(texts["c"]),
        revision=revision,
        expires_at=expires_at,
        link_id=str(texts["n"]),
        key_id=key_id,
    )


# --- console URL --------------------------------------------------------------


def links_allowed(console_url: str | None) -> bool:
    """Return True if action links may point at ``console_url``.

    It must be an http(s) URL :func:`~monitor.sinks.notifiers.messages.link_target`
    accepts, and ``https``, or ``http`` to a loopback host (``127.0.0.0/8``,
    ``localhost``, ``[::1]``).
    """
    target = link_target(console_url)
    if target is None:
        return False
    parts = urlsplit(target)
    if parts.scheme == "https":
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the issuer ---------------------------------------------------------------


class ActionLinkIssuer:
    """Issues and verifies action links.

    Args:
        keys: The HMAC keys (:meth:`ActionLinkKeys.parse`).
        console_url: Public base URL of the console
            (``settings.console_url``); links are issued only when
            :func:`links_allowed` accepts it.
        ttl: Lifetime of a link: a ``timedelta`` or seconds.
        clock: Returns the current time, timezone-aware.

    """

    def __init__(
        self,
        keys: ActionLinkKeys,
        console_url: str | None,
        ttl: timedelta | float = DEFAULT_TTL,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.keys = keys
        self.ttl = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
        if self.ttl <= timedelta(0):
            raise ActionLinkConfigError("the action link lifetime must be > 0")
        self.clock = clock
        self.enabled = links_allowed(console_url)
        self.console_url = (console_url or "").rstrip("/")
        if console_url and not self.enabled:
            log.warning(
                "console_url is neither https nor loopback: chat notices carry "
                "no action links"
            )

    @classmethod
    def from_settings(
        cls, settings: Any, clock: Callable[[], datetime] = utc_now
    ) -> ActionLinkIssuer | None:
        """Build from ``settings``; ``None`` when no keys are set.

        Reads ``action_link_keys``, ``console_url`` and
        ``action_link_ttl_seconds``.
        """
        spec = settings.action_link_keys
        if not spec:
            return None
        return cls(
            ActionLinkKeys.parse(spec),
            settings.console_url,
            timedelta(seconds=settings.action_link_ttl_seconds),
            clock,
        )

    def __repr__(self) -> str:
        return (
            f"ActionLinkIssuer(keys={self.keys!r}, enabled={self.enabled}, "
            f"ttl={self.ttl})"
        )

    def issue(
        self, ticket: Ticket, action: str, channel: str, actor: str | None
    ) -> str:
        """Return a token for ``action`` on ``ticket`` as it is now.

        Args:
            ticket: The ticket, at the revision the notice shows.
            action: ``acknowledge`` or ``start``.
            channel: The channel the link is sent to.
            actor: Whom it is for; ``None`` (a group card) means the
                ticket's owner, else ``group:<channel>``.

        """
        if action not in LINK_ACTIONS:
            raise ValueError(f"links cannot {action!r} a ticket")
        expires = self.clock() + self.ttl
        claims = Claims(
            ticket_id=ticket.ticket_id,
            action=action,
            actor=actor or ticket.owner or f"group:{channel}",
            channel=channel,
            revision=ticket.revision,
            expires_at=expires.astimezone(timezone.utc),
            link_id=_b64encode(secrets.token_bytes(_NONCE_BYTES)),
        )
        return encode_token(self.keys, claims)

    def url(self, token: str) -> str:
        """``<console_url>/console/a#t=<token>``."""
        return f"{self.console_url}/console/a#t={token}"

    def buttons(
        self, ticket: Ticket, channel: str, actor: str | None
    ) -> tuple[ActionLink, ...]:
        """Labelled links for the actions the ticket's status allows.

        ``acknowledge`` (确认) when the ticket is open, ``start`` (开始处理)
        when it is open or acknowledged; nothing when the console URL is not
        https or loopback.
        """
        if not self.enabled:
            return ()
        links = []
        for action, label in LINK_ACTIONS.items():
            if ticket.status in ACTION_SOURCES[TicketAction(action)]:
                token = self.issue(ticket, action, channel, actor)
                links.append(ActionLink(action, label, self.url(token)))
        return tuple(links)

    def verify(self, token: str, now: datetime | None = None) -> Claims:
        """Check a token (see :func:`decode_token`); ``now`` defaults to the clock."""
        return decode_token(self.keys, token, self.clock() if now is None else now)
