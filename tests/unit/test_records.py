"""The post format at the ingestion boundary and the records between stages."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import records
from monitor.errors import InvalidRecordError
from monitor.records import (
    MAX_DEAD_LETTER_PAYLOAD_BYTES,
    MAX_DEAD_LETTER_REASON_BYTES,
    MAX_ID_BYTES,
    MAX_MESSAGE_BYTES,
    POST_FIELDS,
    DeadLetter,
    Post,
    ScoredPost,
    bounded_dead_letter,
    check_http_url,
    check_meta,
    cut_utf8,
    decode_scored_post,
    encode_payload,
    encode_scored_post,
    parse_post,
    post_to_payload,
)

CST = timezone(timedelta(hours=8))
WHEN = "2026-11-20T14:03:27+08:00"


#: Marks a field _post() should leave out.
_ABSENT = object()


def _post(**fields: Any) -> bytes:
    document: dict[str, Any] = {"id": "weibo:1", "text": "好评", "published_at": WHEN}
    document.update(fields)
    return orjson.dumps({k: v for k, v in document.items() if v is not _ABSENT})


# --- valid posts -------------------------------------------------------------

VALID = [
    pytest.param(
        b'{"id": "a", "text": "hi", "published_at": "2026-11-20T14:03:27Z"}',
        {
            "id": "a",
            "text": "hi",
            "published_at": datetime(2026, 11, 20, 14, 3, 27, tzinfo=timezone.utc),
            "source": "unknown",
            "author": None,
            "url": None,
            "topic": None,
            "metrics": {},
            "meta": {},
        },
        id="minimal",
    ),
    pytest.param(
        orjson.dumps(
            {
                "id": "dianping:42",
                "text": "<p>環境很好</p>",
                "published_at": WHEN,
                "source": "dianping",
                "author": "小王",
                "url": "https://example.com/r/42",
                "topic": "空调异味",
                "metrics": {"likes": 3, "reposts": 0, "followers": 1200},
            }
        ),
        {
            "id": "dianping:42",
            "text": "<p>環境很好</p>",
            "published_at": datetime(2026, 11, 20, 14, 3, 27, tzinfo=CST),
            "source": "dianping",
            "author": "小王",
            "url": "https://example.com/r/42",
            "topic": "空调异味",
            "metrics": {"likes": 3, "reposts": 0, "followers": 1200},
            "meta": {},
        },
        id="all-fields",
    ),
    pytest.param(
        _post(id=12345),
        {"id": "12345"},
        id="numeric-id-becomes-str",
    ),
    pytest.param(
        _post(published_at="2026-11-20T06:03:27Z"),
        {"published_at": datetime(2026, 11, 20, 6, 3, 27, tzinfo=timezone.utc)},
        id="z-offset",
    ),
    pytest.param(
        _post(published_at="2026-11-20T14:03:27.250+08:00"),
        {"published_at": datetime(2026, 11, 20, 14, 3, 27, 250000, tzinfo=CST)},
        id="plus-0800-offset-with-fraction",
    ),
    pytest.param(
        _post(metrics={"likes": 3.0, "reposts": 0.0}),
        {"metrics": {"likes": 3, "reposts": 0}},
        id="integral-float-metrics",
    ),
    pytest.param(
        _post(metrics={"likes": 1, "views": 99}),
        {"metrics": {"likes": 1}},
        id="unknown-metric-ignored",
    ),
    pytest.param(
        _post(region="北京", tags=["a", "b"], nested={"x": None}),
        {"meta": {"region": "北京", "tags": ["a", "b"], "nested": {"x": None}}},
        id="unknown-fields-kept-in-meta",
    ),
    pytest.param(_post(text=""), {"text": ""}, id="empty-text-allowed"),
    pytest.param(
        _post(source=None, author=None, metrics=None),
        {"source": "unknown", "author": None, "metrics": {}},
        id="nulls-mean-absent",
    ),
    pytest.param(_post(author=42), {"author": "42"}, id="numeric-author-becomes-str"),
    pytest.param(_post().decode(), {"id": "weibo:1"}, id="str-payload"),
    pytest.param(
        {"id": "m", "text": "t", "published_at": WHEN},
        {"id": "m", "text": "t"},
        id="mapping-payload",
    ),
    pytest.param(
        _post(id="x" * MAX_ID_BYTES), {"id": "x" * MAX_ID_BYTES}, id="id-512-bytes"
    ),
]


@pytest.mark.parametrize(("payload", "expected"), VALID)
def test_valid_post_is_parsed(payload: Any, expected: dict[str, Any]) -> None:
    post = parse_post(payload)
    assert isinstance(post, Post)
    for field, value in expected.items():
        actual = getattr(post, field)
        assert actual == value, field
        if isinstance(value, datetime):
            assert actual.utcoffset() == value.utcoffset()


# --- invalid posts -----------------------------------------------------------

INVALID = [
    pytest.param(b'{"id": "a", "text": ', "not valid JSON", id="invalid-json"),
    pytest.param(b"\xff\xfe", "not valid JSON", id="not-utf8"),
    pytest.param(b"[1, 2]", "a post must be a JSON object, got list", id="json-array"),
    pytest.param(b'"post"', "a post must be a JSON object, got str", id="json-string"),
    pytest.param(b"null", "a post must be a JSON object, got null", id="json-null"),
    pytest.param(b"42", "a post must be a JSON object, got int", id="json-number"),
    pytest.param(
        _post(id=_ABSENT),
        "id is required and must be a non-empty string",
        id="missing-id",
    ),
    pytest.param(
        _post(id=""), "id is required and must be a non-empty string", id="empty-id"
    ),
    pytest.param(
        _post(id="   "), "id is required and must be a non-empty string", id="blank-id"
    ),
    pytest.param(
        _post(id=None), "id is required and must be a non-empty string", id="null-id"
    ),
    pytest.param(
        _post(id=True), "id is required and must be a non-empty string", id="bool-id"
    ),
    pytest.param(
        _post(id=1.5), "id is required and must be a non-empty string", id="float-id"
    ),
    pytest.param(
        _post(id="x" * (MAX_ID_BYTES + 1)),
        f"id is longer than {MAX_ID_BYTES} bytes",
        id="id-513-bytes",
    ),
    pytest.param(
        # 171 three-byte characters: 171 characters but 513 bytes.
        _post(id="好" * 171),
        f"id is longer than {MAX_ID_BYTES} bytes",
        id="id-over-512-bytes-in-utf8",
    ),
    pytest.param(_post(text=_ABSENT), "text is required", id="missing-text"),
    pytest.param(_post(text=None), "text must be a string, got null", id="null-text"),
    pytest.param(_post(text=5), "text must be a string, got int", id="int-text"),
    pytest.param(_post(text=["a"]), "text must be a string, got list", id="list-text"),
    pytest.param(
        _post(published_at=_ABSENT),
        "published_at is required",
        id="missing-published-at",
    ),
    pytest.param(
        _post(published_at="2026-11-20T14:03:27"),
        "published_at has no UTC offset: '2026-11-20T14:03:27'"
        " (write e.g. +08:00 or Z)",
        id="naive-timestamp",
    ),
    pytest.param(
        _post(published_at="2026-11-20"),
        "published_at has no UTC offset",
        id="date-only",
    ),
    pytest.param(
        _post(published_at="20 Nov 2026 14:03"),
        "published_at is not ISO 8601: '20 Nov 2026 14:03'",
        id="non-iso-timestamp",
    ),
    pytest.param(
        _post(published_at=1763618607),
        "published_at must be an ISO 8601 string, got int",
        id="epoch-timestamp",
    ),
    pytest.param(
        _post(published_at=None),
        "published_at must be an ISO 8601 string, got null",
        id="null-timestamp",
    ),
    pytest.param(
        _post(metrics=[1, 2]), "metrics must be an object, got list", id="metrics-list"
    ),
    pytest.param(
        _post(metrics=3), "metrics must be an object, got int", id="metrics-int"
    ),
    pytest.param(
        _post(metrics={"likes": -1}),
        "metrics.likes must be a non-negative integer, got -1",
        id="negative-metric",
    ),
    pytest.param(
        _post(metrics={"reposts": 1.5}),
        "metrics.reposts must be a non-negative integer, got 1.5",
        id="fractional-metric",
    ),
    pytest.param(
        _post(metrics={"followers": "10"}),
        "metrics.followers must be a non-negative integer, got '10'",
        id="string-metric",
    ),
    pytest.param(
        _post(metrics={"likes": True}),
        "metrics.likes must be a non-negative integer, got True",
        id="bool-metric",
    ),
    pytest.param(
        _post(author=["a"]), "author must be a string, got list", id="list-author"
    ),
    pytest.param(
        _post(author={"n": 1}), "author must be a string, got dict", id="dict-author"
    ),
    pytest.param(
        _post(author=False), "author must be a string, got bool", id="bool-author"
    ),
    pytest.param(
        _post(source=[]), "source must be a string, got list", id="list-source"
    ),
    pytest.param(_post(url={}), "url must be a string, got dict", id="dict-url"),
    pytest.param(_post(topic=[]), "topic must be a string, got list", id="list-topic"),
]


@pytest.mark.parametrize(("payload", "reason"), INVALID)
def test_invalid_post_is_rejected_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_post(payload)
    assert caught.value.reason.startswith(reason)
    assert str(caught.value) == caught.value.reason


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(InvalidRecordError, match="no UTC offset"):
        parse_post(_post(published_at="2026-11-20T14:03:27.000"))


def test_offset_is_kept_not_converted_to_utc() -> None:
    post = parse_post(_post(published_at="2026-11-20T23:30:00+08:00"))
    assert post.published_at.utcoffset() == timedelta(hours=8)
    assert post.published_at.day == 20


def test_declared_fields_are_never_copied_into_meta() -> None:
    post = parse_post(
        _post(source="weibo", author="a", url="https://u", topic="t", extra=1)
    )
    assert post.meta == {"extra": 1}
    assert not set(post.meta) & set(POST_FIELDS)


@pytest.mark.parametrize(
    "likes",
    [
        # orjson reads these as floats; parse_post turns any integral float
        # into an int, even one no JSON encoder (and no Elasticsearch "long")
        # can take back.
        pytest.param("1e300", id="1e300"),
        pytest.param("18446744073709551616", id="2**64"),
    ],
)
def test_accepted_metrics_can_be_serialised_again(likes: str) -> None:
    payload = (
        '{"id": "a", "text": "t", "published_at": "2026-11-20T14:03:27Z",'
        f' "metrics": {{"likes": {likes}}}}}'
    )
    try:
        post = parse_post(payload)
    except InvalidRecordError:
        return  # refusing the post at the boundary is fine
    # Accepted: then it must survive the trip to the next topic.
    assert parse_post(post_to_payload(post)).metrics == post.metrics
    assert Post.loads(post.dumps()).metrics == post.metrics


# --- post_to_payload round trip ---------------------------------------------

_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_timestamps = st.datetimes(
    # hypothesis takes naive bounds and attaches the generated zone itself.
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - 1970 in UTC at any offset
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=_offsets,
)
_ids = st.one_of(
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip()),
    st.integers(min_value=0, max_value=2**53).map(str),
)
_optional_text = st.none() | st.text(max_size=20)
_urls = st.none() | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-_.%?=&", max_size=30
).map(lambda path: "https://example.com/" + path)
_metrics = st.dictionaries(
    st.sampled_from(["likes", "reposts", "followers"]),
    st.integers(min_value=0, max_value=2**63 - 1),
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
_meta = st.dictionaries(
    st.text(max_size=10).filter(lambda key: key not in POST_FIELDS),
    _json_values,
    max_size=4,
)


@given(
    post_id=_ids,
    text=st.text(),
    published_at=_timestamps,
    source=st.text(min_size=1, max_size=20),
    author=_optional_text,
    url=_urls,
    topic=_optional_text,
    metrics=_metrics,
    meta=_meta,
)
def test_post_to_payload_round_trips_through_parse_post(
    post_id: str,
    text: str,
    published_at: datetime,
    source: str,
    author: str | None,
    url: str | None,
    topic: str | None,
    metrics: dict[str, int],
    meta: dict[str, Any],
) -> None:
    post = Post(
        id=post_id,
        text=text,
        published_at=published_at,
        source=source,
        author=author,
        url=url,
        topic=topic,
        metrics=metrics,
        meta=meta,
    )
    again = parse_post(post_to_payload(post))
    assert again.id == post_id
    assert again.text == text
    assert again.published_at == published_at
    assert again.published_at.utcoffset() == published_at.utcoffset()
    assert again.source == source
    assert (again.author, again.url, again.topic) == (author, url, topic)
    assert again.metrics == metrics
    assert again.meta == meta


def test_post_to_payload_writes_the_public_format() -> None:
    post = parse_post(_post(region="北京", metrics={"likes": 2}))
    document = orjson.loads(post_to_payload(post))
    assert document == {
        "schema": 1,
        "id": "weibo:1",
        "text": "好评",
        "published_at": WHEN,
        "source": "unknown",
        "region": "北京",
        "metrics": {"likes": 2},
    }


# --- encode_payload ----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(None, ("", "utf-8"), id="none"),
        pytest.param("已经是文本", ("已经是文本", "utf-8"), id="str"),
        pytest.param("服务差".encode(), ("服务差", "utf-8"), id="utf8-bytes"),
        pytest.param(b"", ("", "utf-8"), id="empty-bytes"),
        pytest.param(b"\xff\x00abc", ("/wBhYmM=", "base64"), id="invalid-utf8"),
        pytest.param("好".encode()[:2], ("5aU=", "base64"), id="truncated-utf8"),
    ],
)
def test_encode_payload(payload: bytes | str | None, expected: tuple[str, str]) -> None:
    assert encode_payload(payload) == expected


@given(st.binary())
def test_encode_payload_is_lossless(payload: bytes) -> None:
    text, encoding = encode_payload(payload)
    orjson.dumps(text)  # must fit in a JSON document
    if encoding == "utf-8":
        assert text.encode("utf-8") == payload
    else:
        assert encoding == "base64"
        assert base64.b64decode(text, validate=True) == payload
        with pytest.raises(UnicodeDecodeError):
            payload.decode("utf-8")


# --- ScoredPost / DeadLetter -------------------------------------------------


AWARE_TIMES = [
    datetime(2026, 11, 20, 14, 3, 27, 123456, tzinfo=CST),
    datetime(2026, 11, 20, 1, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(2026, 11, 20, 6, 3, 27, tzinfo=timezone.utc),
]


def _scored(**fields: Any) -> ScoredPost:
    values: dict[str, Any] = {
        "post_id": "weibo:1",
        "source": "weibo",
        "text": "环境很好",
        "original_text": "<b>環境很好</b>",
        "positive_probability": 0.93,
        "label": "positive",
        "keywords": ["环境"],
        "topics": ["环境"],
        "published_at": datetime(2026, 11, 20, 14, 3, 27, 123456, tzinfo=CST),
        "scored_at": datetime(2026, 11, 20, 6, 3, 28, tzinfo=timezone.utc),
        "author": "小王",
        "url": None,
        "likes": 3,
        "reposts": 1,
        "followers": 10,
        "meta": {"region": "北京"},
    }
    values.update(fields)
    return ScoredPost(**values)


@pytest.mark.parametrize("published_at", AWARE_TIMES, ids=["+08:00", "-05:30", "utc"])
def test_scored_post_round_trips_with_aware_datetimes(published_at: datetime) -> None:
    original = _scored(published_at=published_at)
    again = ScoredPost.loads(original.dumps())
    assert again.asdict() == original.asdict()
    assert again.published_at.utcoffset() == published_at.utcoffset()
    assert again.scored_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("published_at", AWARE_TIMES, ids=["+08:00", "-05:30", "utc"])
def test_encode_scored_post_writes_what_faust_writes(published_at: datetime) -> None:
    for post in (_scored(published_at=published_at), _scored(meta=None, author=None)):
        assert encode_scored_post(post) == post.dumps()


def test_decode_scored_post_reads_what_encode_writes() -> None:
    post = _scored()
    data = decode_scored_post(encode_scored_post(post))
    assert data["post_id"] == "weibo:1" and data["keywords"] == ["环境"]
    assert ScoredPost.from_data(data).asdict() == post.asdict()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"post_id": 7}, "post_id must be a string, got int"),
        ({"positive_probability": True}, "positive_probability must be a number"),
        ({"keywords": "环境"}, "keywords must be a list, got str"),
        ({"published_at": "2026-11-20T14:03:27"}, "published_at has no UTC offset"),
        ({"published_at": "0001-01-01T00:00:00+08:00"}, "published_at is outside"),
    ],
)
def test_decode_scored_post_rejects_with_reason(
    change: dict[str, Any], reason: str
) -> None:
    data = orjson.loads(_scored().dumps()) | change
    with pytest.raises(InvalidRecordError) as caught:
        decode_scored_post(orjson.dumps(data))
    assert caught.value.reason.startswith(reason), caught.value.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"{", "not valid JSON"), (b"[1]", "a scored post must be a JSON object")],
)
def test_decode_scored_post_rejects_what_is_not_an_object(
    payload: bytes, reason: str
) -> None:
    with pytest.raises(InvalidRecordError, match=reason):
        decode_scored_post(payload)


def test_scored_post_wire_format_has_no_faust_metadata() -> None:
    document = orjson.loads(_scored().dumps())
    assert "__faust" not in document
    assert document["published_at"] == "2026-11-20T14:03:27.123456+08:00"


def test_dead_letter_round_trips_with_aware_datetime() -> None:
    original = DeadLetter(
        stage="score",
        reason="published_at has no UTC offset",
        payload="/wBhYmM=",
        payload_encoding="base64",
        topic="posts",
        failed_at=datetime(2026, 11, 20, 6, 3, 28, 5, tzinfo=timezone.utc),
        partition=3,
        offset=1234,
        source="weibo",
        post_id="weibo:1",
    )
    again = DeadLetter.loads(original.dumps())
    assert again.asdict() == original.asdict()
    assert again.failed_at.utcoffset() == timedelta(0)


def test_dead_letter_defaults_survive_round_trip() -> None:
    original = DeadLetter(
        stage="index",
        reason="x",
        payload="",
        payload_encoding="utf-8",
        topic="scored-posts",
        failed_at=datetime(2026, 1, 1, tzinfo=CST),
    )
    again = DeadLetter.loads(original.dumps())
    assert (again.partition, again.offset, again.source, again.post_id) == (
        None,
        None,
        "unknown",
        None,
    )
    assert again.failed_at == original.failed_at
    assert again.failed_at.utcoffset() == timedelta(hours=8)


# --- bounded_dead_letter -----------------------------------------------------

FAILED_AT = datetime(2026, 12, 4, 8, 0, tzinfo=timezone.utc)


def _letter(payload: bytes | str | None, reason: str = "bad", **fields: Any) -> Any:
    values: dict[str, Any] = {
        "stage": "score",
        "reason": reason,
        "payload": payload,
        "topic": "posts",
        "partition": 1,
        "offset": 2,
        "failed_at": FAILED_AT,
    }
    values.update(fields)
    return bounded_dead_letter(**values)


def _emoji_post() -> bytes:
    """The 1,004,058-byte post of 251k emoji that used to stall the score stage."""
    head = b'{"id": "emoji", "published_at": "2026-11-20T10:00:00Z", "text": "'
    emoji = "😀".encode()
    count = (1_004_058 - len(head) - 2) // 4
    payload = head + emoji * count + b'"}'
    return payload + b" " * (1_004_058 - len(payload))


def test_the_emoji_post_dead_letter_fits_a_kafka_message() -> None:
    payload = _emoji_post()
    assert len(payload) == 1_004_058
    with pytest.raises(InvalidRecordError) as caught:
        parse_post(payload)
    letter = _letter(payload, caught.value.reason)
    encoded = letter.dumps()
    assert len(encoded) <= MAX_MESSAGE_BYTES
    assert letter.payload_truncated and letter.payload_encoding == "utf-8"
    kept = letter.payload.encode("utf-8")
    assert (
        MAX_DEAD_LETTER_PAYLOAD_BYTES - 4 < len(kept) <= MAX_DEAD_LETTER_PAYLOAD_BYTES
    )
    assert payload.startswith(kept)  # a prefix, cut between characters
    assert letter.reason.startswith("text is longer than 100,000 characters")
    assert DeadLetter.loads(encoded).asdict() == letter.asdict()


def test_a_small_dead_letter_keeps_everything() -> None:
    letter = _letter(b'{"id": 1}', "text is required", source="weibo", post_id="1")
    assert (letter.payload, letter.payload_encoding) == ('{"id": 1}', "utf-8")
    assert not letter.payload_truncated
    assert (letter.topic, letter.partition, letter.offset) == ("posts", 1, 2)
    assert (letter.source, letter.post_id, letter.reason) == (
        "weibo",
        "1",
        "text is required",
    )


def test_a_truncated_base64_payload_still_decodes() -> None:
    payload = b"\xff" + bytes(range(256)) * 2000
    letter = _letter(payload)
    assert letter.payload_encoding == "base64" and letter.payload_truncated
    assert payload.startswith(base64.b64decode(letter.payload, validate=True))


def test_control_characters_are_cut_to_the_byte_cap_of_json() -> None:
    letter = _letter("\x01" * 300_000)
    assert letter.payload_truncated
    assert len(orjson.dumps(letter.payload)) - 2 <= MAX_DEAD_LETTER_PAYLOAD_BYTES
    assert len(letter.dumps()) <= MAX_MESSAGE_BYTES


def test_a_letter_that_cannot_fit_keeps_the_sha256_of_the_payload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(records, "MAX_MESSAGE_BYTES", 1_000)
    payload = b"x" * 5_000
    letter = _letter(payload)
    assert letter.payload_encoding == "sha256" and letter.payload_truncated
    assert letter.payload == hashlib.sha256(payload).hexdigest()
    assert (letter.topic, letter.partition, letter.offset) == ("posts", 1, 2)


def test_text_fields_of_a_dead_letter_are_valid_unicode() -> None:
    letter = _letter("pay\ud800load", "reason \udc80", post_id="\ud800" * 10)
    letter.dumps()  # would raise on a lone surrogate
    assert letter.payload_encoding == "base64"


# Payloads and reasons of any size and make-up: a repeated unit keeps the
# generated values small while the letters built from them are up to ~2 MB.
_units = st.one_of(
    st.text(min_size=1, max_size=6),  # any code points, surrogates included
    st.sampled_from(["😀", "\x01", '"', "\\", "好", "a", "\u2028"]),
)
_counts = st.one_of(
    st.integers(0, 600_000),
    st.sampled_from([1, 4_096, 65_536, 262_143, 262_144, 262_145, 350_000, 600_000]),
)
_big_text = st.builds(lambda unit, n: unit * (n // len(unit)), _units, _counts)
_big_bytes = st.builds(
    lambda unit, n: unit * (n // len(unit)), st.binary(min_size=1, max_size=6), _counts
)


@settings(max_examples=60, deadline=None)
@given(
    payload=st.none() | _big_text | _big_bytes,
    reason=_big_text,
    post_id=st.none() | _big_text,
    source=_big_text,
)
def test_any_dead_letter_fits_a_kafka_message(
    payload: bytes | str | None, reason: str, post_id: str | None, source: str
) -> None:
    letter = _letter(payload, reason, post_id=post_id, source=source)
    encoded = letter.dumps()
    assert len(encoded) <= MAX_MESSAGE_BYTES
    assert len(letter.reason.encode("utf-8")) <= MAX_DEAD_LETTER_REASON_BYTES
    if letter.payload_encoding == "utf-8" and isinstance(payload, bytes):
        assert payload.startswith(letter.payload.encode("utf-8"))
    DeadLetter.loads(encoded)


# --- the URL rule -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "checked"),
    [
        ("https://weibo.example/p/1?a=1#f", "https://weibo.example/p/1?a=1#f"),
        ("HTTP://Weibo.Example:0080", "http://weibo.example:80"),
        ("http://127.0.0.1:6066/x", "http://127.0.0.1:6066/x"),
        ("http://[::0:1]:8080/x", "http://[::1]:8080/x"),
        ("https://例子.中国/路径", "https://xn--fsqu00a.xn--fiqs8s/路径"),
        ("https://weibo.example/a%20b(c)", "https://weibo.example/a%20b(c)"),
    ],
)
def test_check_http_url_returns_the_url_with_a_canonical_host(
    url: str, checked: str
) -> None:
    assert check_http_url(url) == checked
    assert check_http_url(checked) == checked


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("javascript:alert(1)", "the scheme is not http or https"),
        ("ftp://example.com/", "the scheme is not http or https"),
        ("//example.com/", "the scheme is not http or https"),
        ("https:///path", "it has no host"),
        ("https://:80/", "it has no host"),
        ("http://user@example.com/", "it has a user name before the host"),
        ("https://bank.example:pw@evil.example/", "it has a user name before"),
        ("https://example.com:99999/", "its port is not 0-65535"),
        ("https://example.com:http/", "its host or port is malformed"),
        ("https://example.com:８０/", "its host or port is malformed"),
        ("http://[::1/x", "its host or port is malformed"),
        ("http://[fe80::1%eth0]/", "its IPv6 address is malformed"),
        ("http://[not-ipv6]/", "its IPv6 address is malformed"),
        ("https://evil.example>/x", "its host name is not valid"),
        ("https://a..b/", "its host name is not valid"),
        ("https://" + "a" * 64 + ".example/", "its host name is not valid"),
        ("https://example.com/a b", "it has white space or a control character"),
        ("https://example.com/\x1b[31m", "it has white space or a control"),
        ("https://example.com/\x9b31m", "it has white space or a control"),
        ("https://example.com/\u202egnp.exe", "it has white space or a control"),
    ],
)
def test_check_http_url_refuses_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(")):
        check_http_url(url)


# --- cutting text to a byte cap -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "max_bytes", "ellipsis", "cut"),
    [
        ("short", 5, "…", "short"),
        ("好好好", 9, "…", "好好好"),
        ("好好好", 8, "", "好好"),
        ("好好好", 8, "…", "好…"),
        ("好好好a", 7, "…", "好…"),
        ("abcdef", 4, "…", "a…"),
    ],
)
def test_cut_utf8_cuts_between_characters_within_the_cap(
    text: str, max_bytes: int, ellipsis: str, cut: str
) -> None:
    assert cut_utf8(text, max_bytes, ellipsis=ellipsis) == cut
    assert len(cut.encode()) <= max_bytes


def test_cut_utf8_refuses_an_ellipsis_longer_than_the_cap() -> None:
    with pytest.raises(ValueError):
        cut_utf8("abcdef", 2, ellipsis="…")


# --- meta from orjson and from Python take one verdict ------------------------

_meta_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=40,
)


def _verdict(meta: dict[str, Any], *, decoded_json: bool) -> str:
    try:
        check_meta(meta, decoded_json=decoded_json)
    except InvalidRecordError as exc:
        return exc.reason.split(" (")[0]
    return "ok"


@given(st.dictionaries(st.text(max_size=4), _meta_values, max_size=4), st.data())
def test_decoded_json_meta_is_judged_as_a_mapping_is(
    meta: dict[str, Any], data: st.DataObject
) -> None:
    # Wrap in lists now and then to cross the depth limit.
    depth = data.draw(st.sampled_from([0, 0, 30, 31, 40]))
    for _ in range(depth):
        meta = {"d": [meta]}
    decoded = orjson.loads(orjson.dumps(meta))

    assert _verdict(decoded, decoded_json=True) == _verdict(meta, decoded_json=False)


def test_decoded_json_meta_over_the_size_cap_is_refused() -> None:
    meta = orjson.loads(orjson.dumps({"l": [[0] * 100] * 1000}))

    with pytest.raises(InvalidRecordError, match="larger than 65,536 bytes"):
        check_meta(meta, decoded_json=True)
