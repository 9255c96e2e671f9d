"""API tokens: parsing the setting, hashing, roles, and what is refused."""

from __future__ import annotations

import hashlib

import pytest

from monitor.errors import ConfigError
from monitor.web.auth import (
    ADMIN,
    MISSING_BEARER,
    RESPONDER,
    VIEWER,
    ApiToken,
    Authenticator,
    AuthError,
    bearer_token,
    hash_token,
    new_token,
    parse_tokens,
)

ALICE, BOB, ROOT = "alice-secret", "bob-secret", "root-secret"
SPEC = (
    f"alice:viewer:{hash_token(ALICE)}, bob:responder:{hash_token(BOB)},"
    f"root:admin:{hash_token(ROOT).upper()}"
)


def test_hash_is_the_sha256_hex_of_the_utf8_token() -> None:
    assert hash_token("令牌") == hashlib.sha256("令牌".encode()).hexdigest()


def test_new_tokens_are_long_and_different() -> None:
    first, second = new_token(), new_token()
    assert first != second and len(first) >= 40


def test_parse_reads_names_roles_and_lowercases_hashes() -> None:
    tokens = parse_tokens(SPEC)
    assert [(t.name, t.role) for t in tokens] == [
        ("alice", VIEWER),
        ("bob", RESPONDER),
        ("root", ADMIN),
    ]
    assert tokens[2].sha256 == hash_token(ROOT)


@pytest.mark.parametrize("spec", [None, "", "  "])
def test_no_tokens_configured(spec: str | None) -> None:
    assert parse_tokens(spec) == ()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("alice:viewer", "entry 1: expected name:role:sha256hex"),
        (f"alice:boss:{hash_token('x')}", "unknown role 'boss'"),
        ("alice:viewer:plaintext-token", "64 hex digits"),
        (f":viewer:{hash_token('x')}", "name must be non-empty"),
        (
            f"a:viewer:{hash_token('x')},a:admin:{hash_token('y')}",
            "entry 2: duplicate name 'a'",
        ),
    ],
)
def test_bad_entries_are_named(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tokens(spec)
    assert any(message in problem for problem in caught.value.problems)
    assert "plaintext-token" not in str(caught.value)


def test_every_bad_entry_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tokens("a:b, c:nobody:zz")
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("token", "role"), [(ALICE, VIEWER), (BOB, RESPONDER), (ROOT, ADMIN)]
)
def test_known_token_authenticates_with_its_role(token: str, role: str) -> None:
    found = Authenticator.from_spec(SPEC).authenticate(f"Bearer {token}")
    assert found.role == role


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic YWxpY2U6eA==", "Bearer wrong", ALICE],
)
def test_missing_malformed_or_unknown_token_is_401(header: str | None) -> None:
    with pytest.raises(AuthError) as caught:
        Authenticator.from_spec(SPEC).authenticate(header)
    assert caught.value.status == 401


@pytest.mark.parametrize(
    "header",
    [
        "Bearer \udcff",  # aiohttp's decoding of the raw bytes b"Bearer \xff"
        f"Bearer {ALICE}\udc80",
        "\udcffBearer x",
        "Bearer\t" + ALICE,
        "Token " + ALICE,
    ],
)
def test_malformed_header_is_401_with_the_same_message_as_a_missing_one(
    header: str,
) -> None:
    auth = Authenticator.from_spec(SPEC)
    with pytest.raises(AuthError) as missing:
        auth.authenticate(None)
    with pytest.raises(AuthError) as caught:
        auth.authenticate(header)
    assert (caught.value.status, caught.value.reason) == (401, missing.value.reason)
    assert missing.value.reason == MISSING_BEARER


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (f"Bearer {ALICE}", ALICE),
        (f"  bearer   {ALICE}  ", ALICE),
        ("Bearer 令牌", "令牌"),
        (None, None),
        ("Bearer \udcff", None),
    ],
)
def test_bearer_token_reads_only_utf8_bearer_values(
    header: str | None, token: str | None
) -> None:
    assert bearer_token(header) == token


def test_no_configured_tokens_refuses_everyone() -> None:
    with pytest.raises(AuthError) as caught:
        Authenticator([]).authenticate(f"Bearer {ALICE}")
    assert caught.value.status == 401 and "MONITOR_API_TOKENS" in caught.value.reason


@pytest.mark.parametrize(
    ("token", "needed", "allowed"),
    [
        (ALICE, VIEWER, True),
        (ALICE, RESPONDER, False),
        (BOB, RESPONDER, True),
        (BOB, ADMIN, False),
        (ROOT, ADMIN, True),
        (ROOT, VIEWER, True),
    ],
)
def test_roles_are_ordered(token: str, needed: str, allowed: bool) -> None:
    auth = Authenticator.from_spec(SPEC)
    if allowed:
        assert auth.authorize(f"bearer {token}", needed).role in (
            VIEWER,
            RESPONDER,
            ADMIN,
        )
        return
    with pytest.raises(AuthError) as caught:
        auth.authorize(f"Bearer {token}", needed)
    assert caught.value.status == 403 and needed in caught.value.reason


def test_token_allows_its_role_and_below() -> None:
    token = ApiToken("bob", RESPONDER, hash_token(BOB))
    assert token.allows(VIEWER) and token.allows(RESPONDER) and not token.allows(ADMIN)
