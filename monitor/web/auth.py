"""Bearer tokens of the ticket API: who is calling, and what they may do.

Tokens are configured as ``name:role:sha256hex`` entries, comma-separated
(``settings.api_tokens``, ``MONITOR_API_TOKENS``); only the SHA-256 of each
token is kept, so the configuration holds no secret. ``monitor tokens hash``
prints the hash of a token (or makes a new one).

Roles are ordered: ``viewer`` (read) < ``responder`` (act on tickets) <
``admin`` (silences too). The token's name is the actor recorded on events.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.errors import ConfigError, MonitorError

VIEWER = "viewer"
RESPONDER = "responder"
ADMIN = "admin"
#: Roles, least to most powerful.
ROLES = (VIEWER, RESPONDER, ADMIN)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[^\s:,]+")


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest of a token (UTF-8), as configured."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """Return a new random token (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


#: The one answer to a missing or malformed ``Authorization`` header.
MISSING_BEARER = "missing or malformed Authorization header; expected Bearer <token>"


def bearer_token(header: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` value, or None.

    None when the header is missing, blank, of another scheme, has no token,
    or holds characters that are not UTF-8 text (a token is hashed as UTF-8,
    so such bytes can never match one).
    """
    if not header:
        return None
    scheme, _, presented = header.strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return None
    try:
        presented.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return presented


class AuthError(MonitorError):
    """A request may not do what it asks.

    Attributes:
        status: 401 (no or unknown token) or 403 (role too low).
        reason: What is wrong, safe to show the caller.

    """

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class ApiToken:
    """One configured token.

    Attributes:
        name: Who holds it; recorded as the actor of their actions.
        role: One of :data:`ROLES`.
        sha256: Hex SHA-256 of the token (lower case).

    """

    name: str
    role: str
    sha256: str

    def allows(self, role: str) -> bool:
        """Return True if this token's role is ``role`` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)


def parse_tokens(spec: str | None) -> tuple[ApiToken, ...]:
    """Parse ``name:role:sha256hex`` entries, comma-separated.

    Args:
        spec: The setting's value; ``None`` or blank means no tokens.

    Raises:
        ConfigError: One problem per bad entry (never showing the hash).

    """
    if spec is None or not spec.strip():
        return ()
    tokens: list[ApiToken] = []
    problems: list[str] = []
    names: set[str] = set()
    for position, raw in enumerate(spec.split(","), start=1):
        entry = raw.strip()
        where = f"api_tokens entry {position}"
        parts = entry.split(":")
        if len(parts) != 3:
            problems.append(f"{where}: expected name:role:sha256hex")
            continue
        name, role, digest = (part.strip() for part in parts)
        digest = digest.lower()
        if not _NAME.fullmatch(name):
            problems.append(f"{where}: the name must be non-empty, without spaces")
        elif name in names:
            problems.append(f"{where}: duplicate name {name!r}")
        if role not in ROLES:
            problems.append(
                f"{where} ({name}): unknown role {role!r}; expected {', '.join(ROLES)}"
            )
        if not _HEX64.fullmatch(digest):
            problems.append(
                f"{where} ({name}): the third part must be the 64 hex digits of "
                "the token's SHA-256 (see `monitor tokens hash`), not the token"
            )
        names.add(name)
        if not problems:
            tokens.append(ApiToken(name, role, digest))
    if problems:
        raise ConfigError(problems)
    return tuple(tokens)


class Authenticator:
    """Checks ``Authorization: Bearer <token>`` headers against configured tokens.

    Args:
        tokens: The configured tokens; none means every request is refused.

    """

    def __init__(self, tokens: Sequence[ApiToken]) -> None:
        self.tokens = tuple(tokens)

    @classmethod
    def from_spec(cls, spec: str | None) -> Authenticator:
        """Build from a ``name:role:sha256hex,...`` text (``settings.api_tokens``).

        Raises:
            ConfigError: If an entry is malformed.

        """
        return cls(parse_tokens(spec))

    def authenticate(self, header: str | None) -> ApiToken:
        """Return the token an ``Authorization`` header presents.

        The presented token's SHA-256 is compared with every configured hash
        with :func:`hmac.compare_digest`, so timing tells nothing.

        Args:
            header: The header's value as the server decoded it (aiohttp
                keeps bytes that are not UTF-8 as lone surrogates), or None.

        Raises:
            AuthError: 401 if the header is missing or malformed (not
                ``Bearer <token>``, or not UTF-8 text: both with the
                message :data:`MISSING_BEARER`), or the token is unknown.

        """
        if not self.tokens:
            raise AuthError(401, "no API tokens are configured (MONITOR_API_TOKENS)")
        presented = bearer_token(header)
        if presented is None:
            raise AuthError(401, MISSING_BEARER)
        digest = hash_token(presented)
        found: ApiToken | None = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.sha256):
                found = token
        if found is None:
            raise AuthError(401, "unknown token")
        return found

    def authorize(self, header: str | None, role: str) -> ApiToken:
        """Authenticate, then require ``role`` or above.

        Raises:
            AuthError: 401 as :meth:`authenticate`, 403 if the role is too low.

        """
        token = self.authenticate(header)
        if not token.allows(role):
            raise AuthError(
                403, f"{token.name} is a {token.role}; this needs the {role} role"
            )
        return token
