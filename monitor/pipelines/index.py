"""The index stage: scored-posts -> Elasticsearch ``<prefix>-posts-YYYY.MM.DD``."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import faust

from monitor.errors import SinkUnavailable
from monitor.pipelines import Pipeline, register_batch_agent
from monitor.records import ScoredPost, utc_now
from monitor.sinks.base import Document, WriteResult
from monitor.sinks.elasticsearch import to_es_document
from monitor.sinks.retry import until_written

log = logging.getLogger(__name__)

STAGE = "index"


def register(app: faust.App, pipeline: Pipeline) -> faust.types.AgentT:
    """Add the ``index_posts`` agent to ``app``."""
    settings = pipeline.settings
    return register_batch_agent(
        app,
        pipeline,
        topic=pipeline.topics.scored_posts,
        name="index_posts",
        batch_size=settings.index_batch_size,
        batch_seconds=settings.index_batch_seconds,
        handle=index_events,
    )


async def index_events(pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
    """Index a batch of scored posts; retry while Elasticsearch is unavailable.

    The batch is not acknowledged (so its offsets are not committed) until
    Elasticsearch has taken it: an outage delays the stream, it loses nothing.
    Documents Elasticsearch refuses for good become dead letters with its reason.
    """
    settings, metrics = pipeline.settings, pipeline.metrics
    started = time.perf_counter()
    posts: list[tuple[faust.EventT, ScoredPost]] = []
    docs: list[Document] = []
    for event in events:
        try:
            post = ScoredPost.loads(event.value)
        except Exception as exc:  # noqa: BLE001 - undecodable record, see STYLE 4
            await _dead_letter(
                pipeline, event, f"not a ScoredPost: {type(exc).__name__}: {exc}"
            )
            continue
        try:  # map it here, so one bad post cannot fail the whole batch
            docs.append(
                to_es_document(
                    post,
                    prefix=settings.index_prefix,
                    utc_offset=settings.index_utc_offset,
                    indexed_at=utc_now(),
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
        return [
            Document(doc.index, doc.doc_id, {**doc.body, "indexed_at": indexed_at})
            for doc in docs
        ]

    def on_retry(exc: SinkUnavailable, wait: float) -> None:
        metrics.es_bulk_errors.labels(kind="unavailable").inc()
        metrics.sink_retries.labels(sink="elasticsearch").inc()

    async def write() -> WriteResult:
        with metrics.es_bulk_seconds.time():
            return await pipeline.posts_sink.write(build())

    try:
        result = await until_written(
            write,
            initial=settings.es_retry_initial_seconds,
            maximum=settings.es_retry_max_seconds,
            on_retry=on_retry,
        )
    except Exception as exc:  # noqa: BLE001 - a bug must not lose the batch
        log.exception("indexing a batch of %d failed", len(posts))
        for event, post in posts:
            await _dead_letter(
                pipeline, event, f"indexing failed: {type(exc).__name__}: {exc}", post
            )
        return

    by_id = {post.post_id: (event, post) for event, post in posts}
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
    for doc_id in result.written:
        _, post = by_id[doc_id]
        metrics.posts_indexed.labels(source=pipeline.source_label(post.source)).inc()
        lag = (now - post.published_at).total_seconds()
        metrics.event_lag_seconds.labels(stage=STAGE).observe(max(lag, 0.0))
        metrics.event_time_lag.labels(stage=STAGE).set(lag)
    metrics.stage_seconds.labels(stage=STAGE).observe(
        (time.perf_counter() - started) / len(events)
    )


async def _dead_letter(
    pipeline: Pipeline, event: faust.EventT, reason: str, post: ScoredPost | None = None
) -> None:
    await pipeline.dead_letter_event(
        STAGE,
        event,
        reason,
        source=post.source if post else "unknown",
        post_id=post.post_id if post else None,
    )
