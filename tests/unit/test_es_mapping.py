"""The pure parts of the Elasticsearch sink: index names, documents, template."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from typing import Any

import orjson
import pytest

from monitor.analysis.sentiment.model import MAX_KEYWORD_CHARS
from monitor.analysis.topics import MAX_TOPIC_CHARS
from monitor.app import index_templates
from monitor.records import (
    MAX_AUTHOR_CHARS,
    MAX_ID_BYTES,
    MAX_SOURCE_CHARS,
    MAX_URL_CHARS,
    ScoredPost,
)
from monitor.settings import Settings
from monitor.sinks.elasticsearch.posts import (
    daily_index,
    posts_index_pattern,
    to_es_document,
)
from monitor.sinks.elasticsearch.templates import (
    KEYWORD_IGNORE_ABOVE,
    POST_MAPPING,
    post_index_template,
    ticket_index_templates,
)

UTC = timezone.utc
CST = timezone(timedelta(hours=8))
EST = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("at", "offset", "expected"),
    [
        pytest.param(
            datetime(2026, 11, 20, 14, 3, tzinfo=UTC), "+00:00", "2026.11.20", id="utc"
        ),
        pytest.param(
            datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC),
            "+00:00",
            "2026.11.20",
            id="utc-end",
        ),
        pytest.param(
            datetime(2026, 11, 20, 16, 0, tzinfo=UTC),
            "+08:00",
            "2026.11.21",
            id="cst-next-day",
        ),
        pytest.param(
            datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC),
            "+08:00",
            "2026.11.20",
            id="cst-before-midnight",
        ),
        pytest.param(
            datetime(2026, 11, 21, 0, 30, tzinfo=CST),
            "+00:00",
            "2026.11.20",
            id="cst-post-utc-previous-day",
        ),
        pytest.param(
            datetime(2026, 11, 21, 0, 30, tzinfo=CST),
            "+08:00",
            "2026.11.21",
            id="cst-post-cst",
        ),
        pytest.param(
            datetime(2026, 11, 20, 3, 0, tzinfo=UTC),
            "-05:00",
            "2026.11.19",
            id="est-previous-day",
        ),
        pytest.param(
            datetime(2026, 11, 20, 5, 0, tzinfo=UTC),
            "-05:00",
            "2026.11.20",
            id="est-midnight",
        ),
        pytest.param(
            datetime(2026, 12, 31, 20, 0, tzinfo=EST),
            "+08:00",
            "2027.01.01",
            id="year-boundary",
        ),
        pytest.param(
            datetime(2026, 11, 20, 18, 30, tzinfo=UTC),
            "+05:30",
            "2026.11.21",
            id="half-hour",
        ),
        pytest.param(
            datetime(2026, 11, 20, 18, 29, tzinfo=UTC),
            "+05:30",
            "2026.11.20",
            id="half-hour-before",
        ),
    ],
)
def test_daily_index(at: datetime, offset: str, expected: str) -> None:
    assert daily_index("monitor", "posts", at, offset) == f"monitor-posts-{expected}"


def test_daily_index_defaults_to_utc_and_uses_kind_and_prefix() -> None:
    at = datetime(2026, 11, 21, 1, 0, tzinfo=CST)
    assert daily_index("opinion", "tickets", at) == "opinion-tickets-2026.11.20"


def _scored(**fields: Any) -> ScoredPost:
    values: dict[str, Any] = {
        "post_id": "weibo:4977",
        "source": "weibo",
        "text": "环境很好",
        "original_text": "<b>環境很好</b>",
        "positive_probability": 0.8125,
        "label": "positive",
        "keywords": ["环境"],
        "topics": ["环境"],
        "published_at": datetime(2026, 11, 21, 0, 30, tzinfo=CST),
        "scored_at": datetime(2026, 11, 20, 16, 30, 1, tzinfo=UTC),
        "author": "小王",
        "url": "https://weibo.com/4977",
        "likes": 3,
        "reposts": 1,
        "followers": 1200,
        "simhash": -8470387708326702697,
        "meta": {"region": "北京"},
    }
    values.update(fields)
    return ScoredPost(**values)


INDEXED_AT = datetime(2026, 11, 20, 16, 30, 2, tzinfo=UTC)


def test_to_es_document_fields() -> None:
    doc = to_es_document(
        _scored(), prefix="monitor", utc_offset="+08:00", indexed_at=INDEXED_AT
    )
    assert doc.doc_id == "weibo:4977"
    assert doc.index == "monitor-posts-2026.11.21"
    assert dict(doc.body) == {
        "post_id": "weibo:4977",
        "source": "weibo",
        "author": "小王",
        "url": "https://weibo.com/4977",
        "text": "环境很好",
        "original_text": "<b>環境很好</b>",
        "sentiment": 0.8125,
        "sentiment_raw": 0.8125,
        "sentiment_model": None,
        "label": "positive",
        "keywords": ["环境"],
        "topics": ["环境"],
        "published_at": "2026-11-21T00:30:00+08:00",
        "scored_at": "2026-11-20T16:30:01+00:00",
        "indexed_at": "2026-11-20T16:30:02+00:00",
        "likes": 3,
        "reposts": 1,
        "followers": 1200,
        "simhash": -8470387708326702697,
        "meta": {"region": "北京"},
    }


@pytest.mark.parametrize(
    "post",
    [
        _scored(),
        _scored(author=None, url=None, meta=None, keywords=[], topics=[]),
    ],
    ids=["full", "sparse"],
)
def test_document_has_exactly_the_mapped_fields(post: ScoredPost) -> None:
    # The mapping is strict: a missing field loses data, an extra one is refused.
    doc = to_es_document(
        post, prefix="monitor", utc_offset="+00:00", indexed_at=INDEXED_AT
    )
    assert set(doc.body) == set(POST_MAPPING["properties"])
    orjson.dumps(doc.body)  # JSON-able


def test_sentiment_is_the_positive_probability() -> None:
    doc = to_es_document(
        _scored(positive_probability=0.123),
        prefix="m",
        utc_offset="+00:00",
        indexed_at=INDEXED_AT,
    )
    assert doc.body["sentiment"] == 0.123


def test_absent_meta_is_an_empty_object() -> None:
    doc = to_es_document(
        _scored(meta=None), prefix="m", utc_offset="+00:00", indexed_at=INDEXED_AT
    )
    assert doc.body["meta"] == {}


def test_document_lists_are_copies() -> None:
    post = _scored()
    doc = to_es_document(post, prefix="m", utc_offset="+00:00", indexed_at=INDEXED_AT)
    doc.body["keywords"].append("x")
    assert post.keywords == ["环境"]


def test_mapping_is_strict() -> None:
    assert POST_MAPPING["dynamic"] == "strict"
    assert POST_MAPPING["properties"]["sentiment"] == {"type": "float"}
    assert POST_MAPPING["properties"]["published_at"] == {"type": "date"}


def test_post_index_template_covers_daily_indices_only_of_its_prefix() -> None:
    template = post_index_template("monitor")
    (pattern,) = template["index_patterns"]
    at = datetime(2026, 11, 20, tzinfo=UTC)
    assert fnmatchcase(daily_index("monitor", "posts", at), pattern)
    assert not fnmatchcase(daily_index("monitor", "tickets", at), pattern)
    assert not fnmatchcase(daily_index("other", "posts", at), pattern)
    assert template["template"]["mappings"] == POST_MAPPING
    assert template["template"]["settings"]["number_of_shards"] == 1
    assert isinstance(template["priority"], int)


def test_posts_index_pattern_matches_daily_indices() -> None:
    pattern = posts_index_pattern("monitor")
    assert pattern == "monitor-posts-*"
    assert fnmatchcase(
        daily_index("monitor", "posts", datetime(2026, 1, 2, tzinfo=UTC)), pattern
    )


# --- ignore_above on every keyword field --------------------------------------


def _all_templates() -> dict[str, dict[str, Any]]:
    """Every index template the product puts, by name."""
    settings = Settings(kafka_url="kafka://x:1", es_url="http://x:2")
    templates = dict(index_templates(settings))
    templates.update(ticket_index_templates(settings.index_prefix))
    return templates


def _keyword_fields(
    properties: dict[str, Any], path: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, field in properties.items():
        where = f"{path}{name}"
        if field.get("type") == "keyword":
            yield where, field
        yield from _keyword_fields(field.get("properties", {}), where + ".")
        for sub, inner in field.get("fields", {}).items():
            if inner.get("type") == "keyword":
                yield f"{where}.{sub}", inner


def test_every_keyword_field_of_every_template_has_ignore_above() -> None:
    templates = _all_templates()
    assert {"monitor-posts", "monitor-counts", "monitor-bursts"} <= set(templates)
    assert len(templates) == 6
    found = 0
    for name, template in templates.items():
        properties = template["template"]["mappings"]["properties"]
        for where, field in _keyword_fields(properties):
            found += 1
            limit = field.get("ignore_above")
            assert isinstance(limit, int), f"{name}: {where} has no ignore_above"
            # Lucene refuses terms over 32,766 bytes; 4 bytes per character.
            assert 0 < limit * 4 <= 32_766, (name, where, limit)
    assert found >= 30


def test_ignore_above_covers_every_bounded_term() -> None:
    properties = POST_MAPPING["properties"]
    assert properties["post_id"]["ignore_above"] >= MAX_ID_BYTES
    assert properties["url"]["ignore_above"] >= MAX_URL_CHARS
    for bound in (MAX_KEYWORD_CHARS, MAX_TOPIC_CHARS, MAX_SOURCE_CHARS):
        assert bound <= KEYWORD_IGNORE_ABOVE
    assert properties["author"]["ignore_above"] >= MAX_AUTHOR_CHARS
    assert properties["keywords"]["ignore_above"] >= MAX_KEYWORD_CHARS
    assert properties["topics"]["ignore_above"] >= MAX_TOPIC_CHARS
    assert properties["source"]["ignore_above"] >= MAX_SOURCE_CHARS
