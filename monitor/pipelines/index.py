"""The index step of the hot path: scored posts -> ES ``<prefix>-posts-YYYY.MM.DD``.

The hot path's agent (:mod:`monitor.pipelines.score`) hands it each batch
once it is scored and counted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import faust

from monitor.errors import SinkUnavailable
from monitor.pipelines.batches import Pipeline
from monitor.records import ScoredPostData, utc_now
from monitor.sinks.base import Document, WriteResult
from monitor.sinks.elasticsearch.posts import to_es_document
from monitor.sinks.retry import until_written

log = logging.getLogger(__name__)

STAGE = "index"


async def index_decoded(
    pipeline: Pipeline, items: Sequence[tuple[faust.EventT, ScoredPostData]]
) -> None:
    """Index a batch of decoded scored posts; retry while Elasticsearch is unavailable.

    The batch is not acknowledged (so its offsets are not committed) until
    Elasticsearch has taken it: an outage delays the stream, it loses nothing.
    Documents Elasticsearch refuses for good become dead letters with its reason.
    Any other failure propagates, so that the batch is retried and, if it
    keeps failing, bisected (see :func:`monitor.pipelines.consume_batches`).
    """
    settings, metrics = pipeline.settings, pipeline.metrics
    started = time.perf_counter()
    posts: list[tuple[faust.EventT, ScoredPostData]] = []
    docs: list[Document] = []
    indexed_at = utc_now()
    for event, post in items:
        try:  # map it here, so one bad post cannot fail the whole batch
            docs.append(
                to_es_document(
                    post,
                    prefix=settings.index_prefix,
                    utc_offset=settings.index_utc_offset,
                    indexed_at=indexed_at,
                )
            )
        except Exception as exc:  # noqa: BLE001 - one boundary per event, see STYLE 4
            await _dead_letter(
                pipeline,
                event,
                f"cannot map to a document: {type(exc).__name__}: {exc}",
                post,
            )
            continue
        posts.append((event, post))
    if not posts:
        return

    def build() -> list[Document]:
        # indexed_at is the time of the attempt that succeeds, retries included.
        indexed_at = utc_now().isoformat()
        for doc in docs:
            # to_es_document builds each body as a dict; Document only
            # promises a read-only Mapping.
            cast(dict[str, Any], doc.body)["indexed_at"] = indexed_at
        return docs

    def on_retry(exc: SinkUnavailable, wait: float) -> None:
        metrics.es_bulk_errors.labels(kind="unavailable").inc()
        metrics.sink_retries.labels(sink="elasticsearch").inc()

    async def write() -> WriteResult:
        with metrics.es_bulk_seconds.time():
            return await pipeline.posts_sink.write(build())

    result = await until_written(
        write,
        initial=settings.es_retry_initial_seconds,
        maximum=settings.es_retry_max_seconds,
        on_retry=on_retry,
        shutdown=pipeline.shutdown,
    )

    by_id = {post["post_id"]: (event, post) for event, post in posts}
    for rejected in result.rejected:
        metrics.es_bulk_errors.labels(kind="rejected").inc()
        event, post = by_id[rejected.doc_id]
        await _dead_letter(
            pipeline,
            event,
            f"Elasticsearch rejected the document: {rejected.reason}",
            post,
        )
    now = utc_now()
    per_source: Counter[str] = Counter()
    lags = metrics.event_lag_seconds.labels(stage=STAGE)
    lag = None
    existing = set(result.existing)  # a redelivery: indexed the first time
    for doc_id in result.written:
        if doc_id in existing:
            continue
        _, post = by_id[doc_id]
        per_source[post["source"]] += 1
        lag = (now - datetime.fromisoformat(post["published_at"])).total_seconds()
        lags.observe(max(lag, 0.0))
    for source, indexed in per_source.items():
        metrics.posts_indexed.labels(source=pipeline.source_label(source)).inc(indexed)
    if lag is not None:
        metrics.event_time_lag.labels(stage=STAGE).set(lag)
    metrics.stage_seconds.labels(stage=STAGE).observe(
        (time.perf_counter() - started) / len(items)
    )


async def _dead_letter(
    pipeline: Pipeline,
    event: faust.EventT,
    reason: str,
    post: ScoredPostData | None = None,
) -> None:
    await pipeline.dead_letter_event(
        STAGE,
        event,
        reason,
        source=post["source"] if post else "unknown",
        post_id=post["post_id"] if post else None,
    )
