"""The webhook's pure parts: signatures, timestamps, bodies, rates, repeats."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import InvalidRecordError
from monitor.sources.limits import RecentIds, TokenBucket
from monitor.web.ingest import (
    MAX_CLOCK_SKEW_SECONDS,
    check_signature,
    check_timestamp,
    parse_items,
    sign,
    to_post,
)

SECRET = b"crm-secret"
NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"1"}'
    expected = hmac.new(SECRET, b"1764928800." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1764928800, body) == "sha256=" + expected


@given(st.binary(max_size=512), st.integers(min_value=0, max_value=10**11))
def test_a_signed_body_verifies_and_any_change_does_not(body: bytes, ts: int) -> None:
    header = sign(SECRET, ts, body)
    assert check_signature(SECRET, str(ts), header, body) is None
    assert (
        check_signature(
            SECRET, str(ts), header.upper().replace("SHA256=", "sha256="), body
        )
        is None
    )
    assert check_signature(SECRET, str(ts), header, body + b" ") is not None
    assert check_signature(SECRET, str(ts + 1), header, body) is not None
    assert check_signature(b"other-secret", str(ts), header, body) is not None


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "sha256=<64 hex digits>"),
        ("sha1=" + "0" * 40, "sha256=<64 hex digits>"),
        ("sha256=" + "0" * 63, "sha256=<64 hex digits>"),
        ("sha256=" + "g" * 64, "sha256=<64 hex digits>"),
        ("sha256=" + "0" * 64, "does not match"),
    ],
)
def test_malformed_signatures_are_refused_with_a_reason(
    header: str | None, reason: str
) -> None:
    problem = check_signature(SECRET, "100", header, b"{}")
    assert problem is not None and reason in problem
    assert SECRET.decode() not in problem


@given(st.integers(min_value=-MAX_CLOCK_SKEW_SECONDS, max_value=MAX_CLOCK_SKEW_SECONDS))
def test_a_timestamp_within_the_skew_is_fresh(offset: int) -> None:
    now = 1_764_928_800.0
    assert check_timestamp(str(int(now) + offset), now) is None


@pytest.mark.parametrize(
    "offset", [MAX_CLOCK_SKEW_SECONDS + 1, -MAX_CLOCK_SKEW_SECONDS - 1, 86_400]
)
def test_a_stale_or_future_timestamp_is_refused(offset: int) -> None:
    now = 1_764_928_800.0
    problem = check_timestamp(str(int(now) + offset), now)
    assert problem is not None and "server clock" in problem


@pytest.mark.parametrize("header", [None, "", "-5", "1.5", "12e3", "1" * 13, "now"])
def test_a_timestamp_must_be_unix_seconds(header: str | None) -> None:
    assert check_timestamp(header, 1_764_928_800.0) is not None


def test_bodies_are_one_post_an_array_or_json_lines() -> None:
    assert parse_items(b'{"id": 1}', json_lines=False) == ([(0, {"id": 1})], [])
    assert parse_items(b'[{"id": 1}, 2]', json_lines=False) == (
        [(0, {"id": 1}), (1, 2)],
        [],
    )
    items, rejected = parse_items(
        b'{"id": 1}\n\nnot json\n{"id": 3}\n', json_lines=True
    )
    assert items == [(0, {"id": 1}), (2, {"id": 3})]
    assert [(r.index, r.reason.split(":")[0]) for r in rejected] == [
        (1, "not valid JSON")
    ]
    for body in (b"not json", b'"a string"', b"42", b"null"):
        with pytest.raises(InvalidRecordError):
            parse_items(body, json_lines=False)


def test_a_pushed_item_gets_the_source_in_its_id_and_source() -> None:
    post = to_post(
        "crm",
        {"id": 1001, "text": "空调漏水", "published_at": "2026-12-05T09:00:00+08:00"},
        now=NOW,
        max_future_seconds=3600,
    )
    assert post.id == "crm:1001" and post.source == "crm"
    kept = to_post(
        "crm",
        {
            "id": "a",
            "text": "t",
            "published_at": "2026-12-05T09:00:00+08:00",
            "source": "weibo",
        },
        now=NOW,
        max_future_seconds=3600,
    )
    assert kept.source == "weibo"
    for bad in ([], "text", {"id": True, "text": "t", "published_at": "x"}):
        with pytest.raises(InvalidRecordError):
            to_post("crm", bad, now=NOW, max_future_seconds=3600)
    with pytest.raises(InvalidRecordError):  # a week ahead of the clock
        to_post(
            "crm",
            {"id": "f", "text": "t", "published_at": "2026-12-12T09:00:00+08:00"},
            now=NOW,
            max_future_seconds=3600,
        )


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(per_second=2.0, burst=3)
    assert [bucket.take(1, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(1, 0.0) == pytest.approx(0.5)  # nothing taken
    assert bucket.take(1, 0.5) == 0.0
    assert bucket.take(10, 0.5) == pytest.approx(1.5)  # a cost is capped at burst
    assert bucket.take(1, 100.0) == 0.0 and bucket.take(2, 100.0) == 0.0
    assert bucket.take(1, 100.0) > 0


@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=5), st.floats(0, 10)), max_size=50
    )
)
def test_the_bucket_never_grants_more_than_burst_plus_rate_times_time(
    steps: list[tuple[int, float]],
) -> None:
    bucket = TokenBucket(per_second=3.0, burst=5)
    now, granted = 0.0, 0
    for cost, gap in steps:
        now += gap
        if bucket.take(cost, now) == 0.0:
            granted += min(cost, 5)
    assert granted <= 5 + 3.0 * now + 1e-6


def test_recent_ids_forget_the_oldest_beyond_the_limit() -> None:
    recent = RecentIds(limit=3, ids=["a", "b"])
    recent.add(["c", "a", "d"])  # "a" seen again moves to the newest end
    assert list(recent) == ["c", "a", "d"] and len(recent) == 3
    assert "b" not in recent and "a" in recent
