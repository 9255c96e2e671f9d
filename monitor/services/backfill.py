"""Backfill: history through the detectors, so a new deployment has baselines.

``monitor backfill FEED...`` runs the backtest engine's stages (read, score,
count, merge, detectors) over history in event-time order, in one process,
with no worker and nothing sent on Kafka's data topics, and then writes:

* the merge's state (``merge-state``): burst detectors, emerging terms,
  hot-word backgrounds, the complete buckets rule windows still read, and the
  merge's progress through the feed's last bucket — what the live merge
  restores when the workers start, so its detectors need no days of warm-up;
* the count and burst documents of the history's windows (Elasticsearch);
* with ``index_posts``, the posts themselves (by id: a post already indexed
  stays as it is).

Nothing is alerted: no rule but ``hot_word`` is evaluated (so that the
hot-word backgrounds learn), no trigger leaves, and the latches are not
kept, so a live window may fire as soon as it crosses.

It refuses when the live merge has already passed the feed's first bucket
(its detectors cannot go back in time): backfill before the workers first
run, or with history older than anything they have seen. Run it with the
workers stopped: a running merge would not see the state until it restarts,
and would overwrite it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from monitor.analysis.tickets.model import HOT_WORD
from monitor.analysis.windows import window_start
from monitor.config.rules import RuleSet
from monitor.errors import MonitorError
from monitor.records import Burst, Post, ScoredPost, utc_now
from monitor.settings import Settings
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch.bulk import ElasticsearchSink
from monitor.sinks.elasticsearch.posts import to_es_document
from monitor.sinks.elasticsearch.windows import burst_document, count_document
from monitor.sinks.statelog import read_state_log, write_state_log
from monitor.stages.backtest import Rejected, count_settings, make_scorer, read_inputs
from monitor.stages.chain import count_and_detect
from monitor.stages.detect import PARTITION, StateKind, is_merge_commit, state_key
from monitor.stages.state import decode_state
from monitor.topics import prepare_topics

#: Posts per count batch: snapshots do not matter here (nothing alerts).
BATCH_SIZE = 2000


class BackfillRefused(MonitorError):
    """The live state is past the feed's start: a backfill would go backwards."""


@dataclass
class BackfillSummary:
    """What a backfill did.

    Attributes:
        posts: Posts counted.
        rejected: Lines or posts that could not be read or scored.
        first: Event time of the earliest post.
        last: Event time of the latest post.
        windows: Detector windows evaluated.
        documents: Count and burst documents written.
        indexed: Posts indexed (with ``index_posts``).
        state_entries: Merge-state entries written.
        seconds: Wall time.

    """

    posts: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None
    windows: int = 0
    documents: int = 0
    indexed: int = 0
    state_entries: int = 0
    seconds: float = 0.0


def live_progress(entries: Iterable[tuple[str, Any]]) -> int | None:
    """Return the last bucket the live merge emitted (None: it never ran)."""
    for key, value in entries:
        if is_merge_commit(key):
            through = value.get("emitted_through")
            return None if through is None else int(through)
    return None


async def backfill(
    settings: Settings,
    ruleset: RuleSet,
    inputs: Iterable[Path | str | Post],
    *,
    index_posts: bool = False,
) -> BackfillSummary:
    """Run history through the detectors and store what the live merge restores.

    Raises:
        BackfillRefused: The live merge is past the feed's first bucket.
        MonitorError: Kafka or Elasticsearch is not reachable.

    """
    started = time.perf_counter()
    assert settings.kafka_url is not None and settings.es_url is not None
    summary = BackfillSummary()
    posts, summary.rejected = read_inputs(inputs)
    posts.sort(key=lambda post: post.published_at)
    if not posts:
        summary.seconds = time.perf_counter() - started
        return summary
    summary.first, summary.last = posts[0].published_at, posts[-1].published_at
    await prepare_topics(settings)
    topic = settings.topic_merge_state
    live = await read_state_log(settings.kafka_url, topic, PARTITION)
    through = live_progress(live)
    first_bucket = window_start(summary.first.timestamp(), settings.bucket_seconds)
    if through is not None and through >= first_bucket:
        seen = datetime.fromtimestamp(through, tz=timezone.utc).isoformat()
        raise BackfillRefused(
            f"the live merge has counted through {seen}, past the feed's first "
            f"post ({summary.first.isoformat()}): a backfill must be older than "
            "anything the workers have seen (or reset merge-state first)"
        )
    scorer = make_scorer(ruleset, settings)
    scored: list[ScoredPost] = []
    for post, result in zip(posts, scorer.score_many(posts), strict=True):
        if isinstance(result, Exception):
            summary.rejected.append(
                Rejected("posts", 0, f"{post.id}: scoring failed: {result}")
            )
        else:
            scored.append(result)
    summary.posts = len(scored)
    chain = count_and_detect(
        scored,
        settings=count_settings(settings),
        # Only the hot-word detectors need their rules to learn; nothing
        # fires anywhere.
        rules=[rule for rule in ruleset.rules if rule.kind == HOT_WORD],
        topics=list(scorer.matcher.names),
        partitions=settings.topic_partitions,
        batch_size=BATCH_SIZE,
        window_seconds=settings.window_seconds,
        stop_words=ruleset.stop_words,
        topic_words=scorer.matcher.keywords,
        detect_state=live,
    )
    summary.windows = len(chain.windows)
    image = {
        key: decode_state(key, raw)
        for key, raw in chain.state["detect"].get(PARTITION, {}).items()
    }
    latch = state_key(StateKind.LATCH)
    writes: dict[str, Any | None] = {
        key: value for key, value in image.items() if not key.startswith(latch)
    }
    writes.update({key: None for key, _ in live if key not in writes})
    sink = ElasticsearchSink.connect(
        settings.es_url,
        templates=_templates(settings),
        api_key=settings.es_api_key,
        request_timeout=settings.es_request_timeout_seconds,
    )
    try:
        docs = _window_documents(settings, chain.windows)
        summary.documents = await _write(sink, docs)
        if index_posts:
            creating = sink.with_op_type("create")
            summary.indexed = await _write(
                creating,
                [
                    to_es_document(
                        post,
                        prefix=settings.index_prefix,
                        utc_offset=settings.index_utc_offset,
                        indexed_at=utc_now(),
                    )
                    for post in scored
                ],
            )
    finally:
        await sink.close()
    await write_state_log(settings.kafka_url, topic, PARTITION, writes, is_merge_commit)
    summary.state_entries = sum(1 for value in writes.values() if value is not None)
    summary.seconds = time.perf_counter() - started
    return summary


def _templates(settings: Settings) -> dict[str, dict[str, Any]]:
    from monitor.app import index_templates

    return index_templates(settings)


def _window_documents(settings: Settings, windows: Iterable[Any]) -> list[Document]:
    prefix, offset = settings.index_prefix, settings.index_utc_offset
    now = utc_now()
    docs: list[Document] = []
    for report in windows:
        docs += [
            count_document(point, prefix=prefix, utc_offset=offset, complete=True)
            for point in report.points
            if point.kind != "keyword" or point.observed > 0 or point.anomalous
        ]
        docs += [
            burst_document(Burst.from_update(update, now), prefix=prefix)
            for update in report.bursts
        ]
    return docs


async def _write(sink: ElasticsearchSink, docs: list[Document]) -> int:
    written = 0
    for start in range(0, len(docs), 2000):
        result = await sink.write(docs[start : start + 2000])
        if result.rejected:
            first = result.rejected[0]
            raise MonitorError(
                f"Elasticsearch refused {len(result.rejected)} documents, e.g. "
                f"{first.doc_id}: {first.reason}"
            )
        written += len(result.written)
    return written
