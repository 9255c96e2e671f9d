"""Elasticsearch documents for window counts and bursts.

Counts go to daily ``<prefix>-counts-*`` indices, bursts to ``<prefix>-bursts``;
both with idempotent ids. Their mappings and index templates live in
:mod:`monitor.sinks.elasticsearch.templates`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from monitor.analysis.detection import BurstUpdate, SeriesPoint
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch.posts import daily_index


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
