"""Inputs that used to crash later stages are refused up front with a reason."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.sentiment.model import MAX_KEYWORD_CHARS, filter_keywords
from monitor.analysis.topics import MAX_TOPIC_CHARS, WatchedTopic
from monitor.analysis.windows import PartitionLedger, PostFacts
from monitor.config.yamlfile import load_yaml
from monitor.errors import ConfigError, InvalidRecordError
from monitor.records import (
    MAX_AUTHOR_CHARS,
    MAX_ID_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_META_BYTES,
    MAX_META_DEPTH,
    MAX_SOURCE_CHARS,
    MAX_TEXT_CHARS,
    MAX_TEXT_JSON_BYTES,
    MAX_URL_CHARS,
    Post,
    ScoredPost,
    decode_scored_post,
    encode_scored_post,
    parse_post,
)
from monitor.sources.files import read_posts
from monitor.stages.score import PostScorer

BASE = {"id": "a", "text": "好", "published_at": "2026-11-20T10:00:00+08:00"}


def test_text_longer_than_the_limit_is_refused() -> None:
    parse_post({**BASE, "text": "好" * MAX_TEXT_CHARS})
    with pytest.raises(InvalidRecordError, match="text is longer than 100,000"):
        parse_post({**BASE, "text": "好" * (MAX_TEXT_CHARS + 1)})


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "1969-12-31T23:59:59Z"],
)
def test_timestamps_that_cannot_date_an_index_are_refused(stamp: str) -> None:
    with pytest.raises(InvalidRecordError, match="outside the years 1970-2100"):
        parse_post({**BASE, "published_at": stamp})


def test_gbk_csv_is_refused_with_a_clear_reason(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_bytes(
        "id,text,published_at\n1,空调有异味,2026-11-20T10:00:00Z\n".encode("gbk")
    )
    with pytest.raises(InvalidRecordError, match="not UTF-8"):
        list(read_posts(path))


def test_jsonl_with_a_byte_order_mark_reads_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + b'{"id": "1", "text": "x", '
        b'"published_at": "2026-11-20T10:00:00Z"}\n'
    )
    (line,) = list(read_posts(path))
    assert line.post is not None and line.post.id == "1"


def test_non_utf8_yaml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    path.write_bytes("topics:\n  空调:\n    keywords: [空调]\n".encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml(path)


# --- published_at: far future, years in UTC ---------------------------------

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        pytest.param("2027-12-04T08:00:00Z", "from the future", id="now-plus-1-year"),
        pytest.param("2026-12-04T16:16:00+08:00", "from the future", id="plus-16-min"),
        # 2101 in UTC: refused by the year already (and the future bound too).
        pytest.param("2100-12-31T23:59:59-14:00", "outside the years", id="2100-14"),
    ],
)
def test_a_post_from_the_future_is_refused_with_that_reason(
    stamp: str, reason: str
) -> None:
    with pytest.raises(InvalidRecordError, match=reason):
        parse_post({**BASE, "published_at": stamp}, now=NOW, max_future_seconds=900)


def test_future_check_reason_names_the_worker_clock() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_post(
            {**BASE, "published_at": "2027-12-04T08:00:00Z"},
            now=NOW,
            max_future_seconds=900,
        )
    assert caught.value.reason.startswith("published_at is from the future")
    assert "365 days ahead of the worker clock (2026-12-04T08:00:00Z)" in (
        caught.value.reason
    )


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [(-86_400 * 365, True), (0, True), (900, True), (901, False)],
)
def test_future_bound_is_max_future_seconds_ahead_of_now(
    ahead: int, accepted: bool
) -> None:
    stamp = (NOW + timedelta(seconds=ahead)).isoformat()
    payload = {**BASE, "published_at": stamp}
    if accepted:
        parse_post(payload, now=NOW, max_future_seconds=900)
    else:
        with pytest.raises(InvalidRecordError, match="from the future"):
            parse_post(payload, now=NOW, max_future_seconds=900)
    # Without a bound (replay reads history) the date only has to be in range.
    assert parse_post(payload).published_at == NOW + timedelta(seconds=ahead)


def test_the_year_is_checked_in_utc_not_at_the_posts_offset() -> None:
    with pytest.raises(
        InvalidRecordError, match=r"outside the years 1970-2100 \(UTC\)"
    ):
        parse_post({**BASE, "published_at": "2100-12-31T23:59:59-14:00"})
    with pytest.raises(InvalidRecordError, match="outside the years"):
        parse_post({**BASE, "published_at": "1970-01-01T00:00:00+08:00"})
    parse_post({**BASE, "published_at": "2100-12-31T23:59:59+00:00"})


def test_a_future_bound_needs_a_clock() -> None:
    with pytest.raises(ValueError, match="needs now"):
        parse_post(BASE, max_future_seconds=900)


# --- meta: depth, size, JSON values ------------------------------------------


def _nested(depth: int) -> bytes:
    """A post whose meta field ``deep`` nests ``depth`` arrays (meta is level 1)."""
    return (
        b'{"id": "d", "text": "x", "published_at": "2026-11-20T10:00:00Z", "deep": '
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )


@pytest.mark.parametrize("depth", [MAX_META_DEPTH, 254, 1023])
def test_meta_nested_deeper_than_the_limit_is_refused(depth: int) -> None:
    # meta itself is level 1, so MAX_META_DEPTH - 1 arrays inside it fit.
    parse_post(_nested(MAX_META_DEPTH - 1))
    with pytest.raises(InvalidRecordError, match="nested more than 32 levels deep"):
        parse_post(_nested(depth))


def test_meta_at_the_depth_limit_survives_encoding() -> None:
    post = parse_post(_nested(MAX_META_DEPTH - 1))
    assert post.meta is not None
    scored = _score([post])[0]
    decode_scored_post(encode_scored_post(scored))


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        pytest.param(
            {"big": 2**64}, "meta.big is an integer beyond 64 bits", id="2**64"
        ),
        pytest.param(
            {"big": -(2**63) - 1},
            "meta.big is an integer beyond 64 bits",
            id="-2**63-1",
        ),
        pytest.param(
            {"n": [1, {"x": 10**30}]}, "meta.n[].x is an integer beyond", id="nested"
        ),
        pytest.param({"s": "a\ud800b"}, "meta.s is not valid Unicode", id="surrogate"),
        pytest.param({"k\udc80": 1}, "a key of meta is not valid Unicode", id="key"),
        pytest.param({"f": float("nan")}, "meta.f is nan, not a JSON number", id="nan"),
        pytest.param({"f": float("inf")}, "meta.f is inf, not a JSON number", id="inf"),
        pytest.param({"m": {1: "a"}}, "meta.m has a key that is not a string", id="k"),
        pytest.param({"s": {1, 2}}, "meta.s is not a JSON value (got set)", id="set"),
        pytest.param({"b": b"x"}, "meta.b is not a JSON value (got bytes)", id="bytes"),
        pytest.param(
            {"t": "x" * MAX_META_BYTES}, "meta is larger than 65,536 bytes", id="long"
        ),
        pytest.param(
            {"l": [0] * (MAX_META_BYTES // 2)},
            "meta is larger than 65,536 bytes",
            id="many",
        ),
    ],
)
def test_meta_that_cannot_travel_is_refused_with_a_reason(
    meta: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_post({**BASE, **meta})
    assert caught.value.reason.startswith(reason), caught.value.reason
    caught.value.reason.encode("utf-8")  # the reason itself can be dead-lettered


@pytest.mark.parametrize(
    "meta",
    [
        pytest.param({"u64": 2**64 - 1, "i64": -(2**63)}, id="64-bit-ints"),
        pytest.param({"t": ("a", 1.5, None, True)}, id="tuple"),
        pytest.param({"t": "好" * 20_000}, id="60000-bytes"),
    ],
)
def test_meta_within_the_bounds_is_kept_and_encodes(meta: dict[str, Any]) -> None:
    post = parse_post({**BASE, **meta})
    assert post.meta == meta
    data = decode_scored_post(encode_scored_post(_score([post])[0]))
    assert set(data["meta"]) == set(meta)


def test_a_huge_integer_in_json_becomes_a_float_and_is_accepted() -> None:
    post = parse_post(
        b'{"id": "a", "text": "x", "published_at": "2026-11-20T10:00:00Z",'
        b' "n": 123456789012345678901234567890}'
    )
    assert isinstance(post.meta["n"], float)  # type: ignore[index]
    encode_scored_post(_score([post])[0])


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({"id": 10**5000}, "id is an integer beyond 64 bits", id="id"),
        pytest.param({"id": "a\ud800"}, "id is not valid Unicode", id="id-surrogate"),
        pytest.param({"text": "\udfff"}, "text is not valid Unicode", id="text"),
        pytest.param({"author": "\ud800"}, "author is not valid Unicode", id="author"),
        pytest.param({"author": 10**5000}, "author is an integer beyond", id="int"),
        pytest.param(
            {"metrics": {"likes": 10**5000}},
            "metrics.likes must be a whole number no larger than 2**63-1, "
            "got an integer of 16610 bits",
            id="metric",
        ),
    ],
)
def test_mapping_payloads_are_checked_like_json(
    fields: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_post({**BASE, **fields})
    assert caught.value.reason.startswith(reason), caught.value.reason


# --- text, url, source, author, topic ---------------------------------------


def test_text_is_bounded_in_json_bytes_too() -> None:
    parse_post({**BASE, "text": "😀" * MAX_TEXT_CHARS})  # 400,000 bytes exactly
    with pytest.raises(InvalidRecordError, match="longer than 400,000 bytes"):
        parse_post({**BASE, "text": "\x01" * 70_000})  # 6 bytes each once escaped


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript://%0aalert(1)",
        "data:text/html,<b>x</b>",
        "ftp://example.com/a",
        "/relative/path",
        "example.com/x",
        "https://",
        "https:///path",
        "https://example.com/a b",
        "https://example.com/a\nb",
        "https://example.com/\x00",
        # What a link would refuse too (one rule: records.check_http_url).
        "http://user@example.com/",
        "https://bank.example@evil.example/",
        "https://example.com:99999/",
        "https://example.com:http/",
        "https://exa mple.com/",
        "https://evil.example>/x",
        "http://[::1/x",
        "https://example.com/\x9b31m",
        "https://example.com/\u202egnp.exe",
    ],
)
def test_url_must_be_http_or_https(url: str) -> None:
    with pytest.raises(InvalidRecordError, match=r"url must be an http\(s\) URL"):
        parse_post({**BASE, "url": url})


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://t.cn/A6x?a=1#f",
        "HTTPS://Example.com/%E5%A5%BD",
        "http://[::1]:8080/x",
        "https://例子.中国/路径?q=好",
    ],
)
def test_http_urls_are_kept_as_given(url: str) -> None:
    assert parse_post({**BASE, "url": url}).url == url


def test_url_length_is_bounded_and_empty_means_none() -> None:
    url = "https://example.com/" + "a" * (MAX_URL_CHARS - 20)
    assert parse_post({**BASE, "url": url}).url == url
    with pytest.raises(InvalidRecordError, match="url is longer than 2,048"):
        parse_post({**BASE, "url": url + "a"})
    assert parse_post({**BASE, "url": ""}).url is None


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("source", MAX_SOURCE_CHARS),
        ("author", MAX_AUTHOR_CHARS),
        ("topic", MAX_TOPIC_CHARS),
    ],
)
def test_term_fields_are_bounded(field: str, limit: int) -> None:
    assert getattr(parse_post({**BASE, field: "名" * limit}), field) == "名" * limit
    with pytest.raises(InvalidRecordError, match=f"{field} is longer than {limit}"):
        parse_post({**BASE, field: "名" * (limit + 1)})


def test_watched_topic_names_are_bounded() -> None:
    WatchedTopic("名" * MAX_TOPIC_CHARS, ("a",))
    with pytest.raises(ValueError, match="at most 64 characters"):
        WatchedTopic("名" * (MAX_TOPIC_CHARS + 1), ("a",))


def test_readme_post_format_documents_the_bounds() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("## Post format", 1)[1].split("\n## ", 1)[0]
    for figure in (
        f"{MAX_TEXT_CHARS:,} characters",
        f"{MAX_TEXT_JSON_BYTES:,} bytes",
        f"{MAX_ID_BYTES} bytes",
        f"{MAX_URL_CHARS:,} characters",
        f"{MAX_SOURCE_CHARS} characters",
        f"{MAX_AUTHOR_CHARS} characters",
        f"{MAX_TOPIC_CHARS} characters",
        f"{MAX_META_DEPTH} levels",
        f"{MAX_META_BYTES // 1024} KiB",
        f"{MAX_KEYWORD_CHARS} characters",
        "MONITOR_MAX_FUTURE_SECONDS",
        "from the future",
    ):
        assert figure in section, figure


# --- keywords: 40,000-character tokens ---------------------------------------

_SCORER: PostScorer | None = None


def _score(posts: list[Post]) -> list[ScoredPost]:
    global _SCORER
    if _SCORER is None:
        _SCORER = PostScorer([WatchedTopic("长词", ("aa",))], LabelThresholds(0.3, 0.7))
    results = _SCORER.score_many(posts)
    assert not [r for r in results if isinstance(r, Exception)]
    return results  # type: ignore[return-value]


def _long_token_posts(count: int) -> list[Post]:
    posts = []
    for n in range(count):
        pair = chr(97 + n % 26) + chr(97 + n // 26)
        text = pair * 20_000 + " " + pair.upper() * 20_000  # two 40,000-char tokens
        posts.append(
            parse_post(
                {
                    "id": f"long-{n}",
                    "text": text,
                    "published_at": f"2026-11-20T10:00:{n:02d}Z",
                    "author": f"author-{n}",
                }
            )
        )
    return posts


def test_tokens_of_40000_characters_never_become_keywords() -> None:
    posts = _long_token_posts(30)
    scored = _score(posts)
    assert all(len(k) <= MAX_KEYWORD_CHARS for s in scored for k in s.keywords)
    assert not any(s.keywords for s in scored)  # every token was too long
    facts = []
    for n, post in enumerate(scored):
        encoded = encode_scored_post(post)
        assert len(encoded) <= MAX_MESSAGE_BYTES
        facts.append((n, PostFacts.from_scored(decode_scored_post(encoded))))
    ledger = PartitionLedger(0, 300, 120)
    outcome = ledger.apply(facts)
    assert outcome.counted == 30
    closed = ledger.flush()
    values = [*outcome.writes.values(), *closed.writes.values()]
    values += [window.to_dict() for window in closed.closed]
    assert closed.closed and values
    for value in values:
        assert len(orjson.dumps(value)) <= MAX_MESSAGE_BYTES


def test_keywords_up_to_the_cap_are_kept() -> None:
    word = "k" * MAX_KEYWORD_CHARS
    assert filter_keywords([word, word + "k", "好评"], 5) == [word, "好评"]
