"""Posts in Elasticsearch: the document of a scored post and its daily index.

The mapping and index template of the posts indices live in
:mod:`monitor.sinks.elasticsearch.templates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monitor.config.durations import parse_utc_offset
from monitor.records import ScoredPost, ScoredPostData
from monitor.sinks.base import Document


def posts_index_pattern(prefix: str) -> str:
    """Pattern matching every daily posts index, e.g. ``monitor-posts-*``."""
    return f"{prefix}-posts-*"


def daily_index(
    prefix: str, kind: str, at: datetime, utc_offset: str = "+00:00"
) -> str:
    """Name of the daily index for a timestamp, e.g. ``monitor-posts-2026.11.20``.

    Args:
        prefix: Index prefix from settings.
        kind: ``posts``, ``counts``, ...
        at: A timezone-aware timestamp (the post's ``published_at``).
        utc_offset: ``+08:00`` dates indices by China Standard Time.

    Raises:
        ValueError: If ``utc_offset`` is not a UTC offset (settings check it).

    """
    day = at.astimezone(parse_utc_offset(utc_offset))
    return f"{prefix}-{kind}-{day.year:04d}.{day.month:02d}.{day.day:02d}"


def to_es_document(
    post: ScoredPost | ScoredPostData,
    *,
    prefix: str,
    utc_offset: str,
    indexed_at: datetime,
) -> Document:
    """Map a scored post to its Elasticsearch document (id = post id).

    ``post`` is a :class:`ScoredPost` or its JSON as decoded by
    :func:`~monitor.records.decode_scored_post` (timestamps as ISO strings).
    """
    data = post.asdict() if isinstance(post, ScoredPost) else post
    published = wire = data["published_at"]
    if isinstance(published, str):
        published = datetime.fromisoformat(published)
    else:
        wire = published.isoformat()
    scored = data["scored_at"]
    body = {
        "post_id": data["post_id"],
        "source": data["source"],
        "author": data.get("author"),
        "url": data.get("url"),
        "text": data["text"],
        "original_text": data.get("original_text", data["text"]),
        "sentiment": data["positive_probability"],
        # Before the field every score was snownlp's raw probability.
        "sentiment_raw": _raw_probability(data),
        "sentiment_model": data.get("sentiment_model"),
        "label": data["label"],
        "keywords": list(data["keywords"]),
        "topics": list(data["topics"]),
        "published_at": wire,
        "scored_at": scored if isinstance(scored, str) else scored.isoformat(),
        "indexed_at": indexed_at.isoformat(),
        "likes": data.get("likes") or 0,
        "reposts": data.get("reposts") or 0,
        "followers": data.get("followers") or 0,
        "simhash": data.get("simhash") or 0,
        "meta": data.get("meta") or {},
    }
    return Document(
        index=daily_index(prefix, "posts", published, utc_offset),
        doc_id=data["post_id"],
        body=body,
    )


def _raw_probability(data: Mapping[str, Any]) -> float:
    raw = data.get("raw_positive_probability")
    return float(data["positive_probability"] if raw is None else raw)
