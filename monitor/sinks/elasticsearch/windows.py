"""Elasticsearch documents for window counts and bursts.

Counts go to daily ``<prefix>-counts-*`` indices, bursts to ``<prefix>-bursts``;
both with explicit, strict mappings and idempotent ids.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from monitor.analysis.detection import BurstUpdate, SeriesPoint
from monitor.records import MAX_ID_BYTES
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch.sink import daily_index, keyword_field

COUNT_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "series": keyword_field(),
        "kind": keyword_field(),
        "key": keyword_field(),
        "window_start": {"type": "date"},
        "window_end": {"type": "date"},
        "window_seconds": {"type": "integer"},
        "observed": {"type": "double"},
        "expected": {"type": "double"},
        "score": {"type": "double"},
        "anomalous": {"type": "boolean"},
        "posts": {"type": "long"},
        "negative": {"type": "long"},
        "negative_share": {"type": "double"},
        "negative_influence": {"type": "double"},
        "complete": {"type": "boolean"},
    },
}

BURST_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "burst_id": keyword_field(),
        "series": keyword_field(),
        "kind": keyword_field(),
        "key": keyword_field(),
        "phase": keyword_field(),
        "window_start": {"type": "date"},
        "window_seconds": {"type": "integer"},
        "observed": {"type": "double"},
        "expected": {"type": "double"},
        "score": {"type": "double"},
        "started_at": {"type": "date"},
        "peak_at": {"type": "date"},
        "ended_at": {"type": "date"},
        "peak_score": {"type": "double"},
        "peak_observed": {"type": "double"},
        "peak_expected": {"type": "double"},
        "post_ids": keyword_field(MAX_ID_BYTES),
        "updated_at": {"type": "date"},
    },
}


def _template(pattern: str, mapping: dict[str, Any], what: str) -> dict[str, Any]:
    return {
        "index_patterns": [pattern],
        "priority": 200,
        "template": {
            "settings": {
                "number_of_shards": 1,
                "number_of_replicas": 0,
                "refresh_interval": "1s",
            },
            "mappings": mapping,
        },
        "_meta": {"managed_by": "monitor", "description": what},
    }


def count_index_template(prefix: str) -> dict[str, Any]:
    """Index template of the daily window-count indices."""
    return _template(f"{prefix}-counts*", COUNT_MAPPING, "window counts per series")


def burst_index_template(prefix: str) -> dict[str, Any]:
    """Index template of the bursts index."""
    return _template(f"{prefix}-bursts*", BURST_MAPPING, "bursts per series")


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


def count_document(
    point: SeriesPoint, *, prefix: str, utc_offset: str, complete: bool
) -> Document:
    """Document of one series' window (id ``<series>@<window start>``)."""
    start = datetime.fromtimestamp(point.window_start, tz=timezone.utc)
    body = {
        "series": point.series,
        "kind": point.kind,
        "key": point.key,
        "window_start": start.isoformat(),
        "window_end": _iso(point.window_start + point.window_seconds),
        "window_seconds": point.window_seconds,
        "observed": point.observed,
        "expected": point.expected,
        "score": point.score,
        "anomalous": point.anomalous,
        "posts": point.posts,
        "negative": point.negative,
        "negative_share": point.negative / point.posts if point.posts else 0.0,
        "negative_influence": point.negative_influence,
        "complete": complete,
    }
    return Document(
        index=daily_index(prefix, "counts", start, utc_offset),
        doc_id=f"{point.series}@{point.window_start}",
        body=body,
    )


def burst_body(burst: BurstUpdate, updated_at: datetime) -> dict[str, Any]:
    """JSON body of a burst, for the ``bursts`` topic and Elasticsearch."""
    return {
        "burst_id": burst.burst_id,
        "series": burst.series,
        "kind": burst.kind,
        "key": burst.key,
        "phase": burst.phase,
        "window_start": _iso(burst.window_start),
        "window_seconds": burst.window_seconds,
        "observed": burst.observed,
        "expected": burst.expected,
        "score": burst.score,
        "started_at": _iso(burst.started_at),
        "peak_at": _iso(burst.peak_at),
        "ended_at": _iso(burst.ended_at),
        "peak_score": burst.peak_score,
        "peak_observed": burst.peak_observed,
        "peak_expected": burst.peak_expected,
        "post_ids": list(burst.post_ids),
        "updated_at": updated_at.isoformat(),
    }


def burst_document(
    burst: BurstUpdate, *, prefix: str, updated_at: datetime
) -> Document:
    """Document of a burst (id = burst id: its updates replace it)."""
    return Document(
        index=f"{prefix}-bursts",
        doc_id=burst.burst_id,
        body=burst_body(burst, updated_at),
    )
