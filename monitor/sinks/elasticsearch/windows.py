"""Elasticsearch documents for window counts and bursts.

Counts go to daily ``<prefix>-counts-*`` indices, bursts to ``<prefix>-bursts``;
both with idempotent ids. Their mappings and index templates live in
:mod:`monitor.sinks.elasticsearch.templates`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from monitor.analysis.detection import SeriesPoint
from monitor.records import Burst
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


def burst_document(burst: Burst, *, prefix: str) -> Document:
    """Document of a burst (id = burst id: its updates replace it).

    The body is the ``bursts`` record's (:meth:`~monitor.records.Burst.body`).
    """
    return Document(index=f"{prefix}-bursts", doc_id=burst.burst_id, body=burst.body())
