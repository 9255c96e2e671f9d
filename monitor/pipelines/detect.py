"""The detect stage's host: window-partials -> window counts, bursts, triggers.

Partials and snapshots of short buckets come in; threshold rules are summed
over their own windows of buckets and may fire on an open bucket's lower
bound, seconds after the crossing post (see
:mod:`monitor.analysis.rulewindows`).

``merge_windows`` reads ``window-partials`` (one partition) and drives the
Faust-free :class:`~monitor.stages.detect.WindowDetector`: it restores it
from the ``merge-state`` log, hands it each batch of
:class:`~monitor.records.PartitionReport`, then publishes what it returns in
an order a retry can repeat: window documents and bursts to Elasticsearch
(idempotent by id), then :class:`~monitor.records.Burst` and
:class:`~monitor.records.TriggerEvent` records, then the state log. If any of
that fails, the detector is dropped and rebuilt from its log before the batch
is handled again, so a window whose outputs did not all go out is completed
again and sends them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import faust
import orjson

from monitor.analysis.detection import WindowReport, amended_points
from monitor.analysis.tickets import AlertRule, Trigger
from monitor.pipelines.batches import Pipeline, register_batch_agent
from monitor.records import Burst, PartitionReport, TriggerEvent, utc_now
from monitor.sinks.base import Document
from monitor.sinks.elasticsearch.windows import burst_document, count_document
from monitor.sinks.retry import until_written
from monitor.stages.detect import (
    PARTITION,
    AmendedWindow,
    DetectResult,
    WindowDetector,
    is_merge_commit,
)
from monitor.stages.state import StateStore

log = logging.getLogger(__name__)

STAGE = "merge"


class MergeStage:
    """Feeds :class:`WindowDetector` batches and publishes what it returns."""

    NAME = STAGE

    def __init__(
        self,
        pipeline: Pipeline,
        state: StateStore,
        rules: Callable[[], Sequence[AlertRule]],
        topics: Callable[[], Sequence[str]],
        stop_words: Callable[[], Iterable[str]] = tuple,
        topic_words: Callable[[], Mapping[str, Sequence[str]]] = dict,
    ) -> None:
        """Start unrestored; the callables read the current rules file."""
        settings = pipeline.settings
        self.pipeline = pipeline
        self.state = state
        self.rules = rules
        self.topics = topics
        self.stop_words = stop_words
        self.topic_words = topic_words
        self.lock = asyncio.Lock()
        self.detector = WindowDetector(
            partitions=settings.topic_partitions,
            bucket_seconds=settings.bucket_seconds,
            window_seconds=settings.window_seconds,
            window_wait_seconds=settings.window_wait_seconds,
        )
        #: True once the partition was taken away (until it is given back):
        #: events Faust had buffered are left to the new owner
        self.revoked = False

    def assign(self) -> None:
        """Take the partition (again): its records are this worker's to merge."""
        self.revoked = False

    def forget(self) -> None:
        """Drop the state (the partition moved to another worker)."""
        self.revoked = True
        self.detector.drop()

    async def restore(self) -> WindowDetector:
        """Return the detector, rebuilt from the state log if it is not."""
        detector = self.detector
        if not detector.restored:
            detector.restore(await self.state.entries(PARTITION), time.monotonic())
            assert detector.merger is not None and detector.evaluator is not None
            log.info(
                "merge: restored (%d pending windows, emitted through %s, "
                "%d amendable, %d series)",
                len(detector.merger.pending),
                detector.merger.emitted_through,
                len(detector.merger.amendable),
                len(detector.evaluator.detectors),
            )
        detector.stop_words = frozenset(self.stop_words())
        detector.topic_words = {k: tuple(v) for k, v in self.topic_words().items()}
        return detector

    async def handle(self, pipeline: Pipeline, events: Sequence[faust.EventT]) -> None:
        """Merge a batch of partition reports; publish what completes.

        Raises:
            Exception: Whatever a write raised, after dropping the detector
                (it is rebuilt from the log before the batch runs again).

        """
        async with self.lock:
            if self.revoked:
                log.info(
                    "merge: %d records of a revoked partition skipped", len(events)
                )
                return
            try:
                detector = await self.restore()
                reports = []
                for event in events:
                    try:
                        reports.append(PartitionReport.decode(event.value))
                    except Exception as exc:  # noqa: BLE001 - any undecodable record
                        await pipeline.dead_letter_event(
                            STAGE, event, f"not a partition report: {exc}"
                        )
                result = detector.handle(
                    reports, time.monotonic(), list(self.rules()), list(self.topics())
                )
                await self._publish(result)
            except BaseException:
                self.detector.drop()
                raise

    async def tick(self) -> None:
        """Complete windows whose missing partitions fell silent."""
        async with self.lock:
            try:
                result = self.detector.tick(
                    time.monotonic(), list(self.rules()), list(self.topics())
                )
                if result is not None:
                    await self._publish(result)
            except BaseException:
                self.detector.drop()
                raise

    async def _publish(self, result: DetectResult) -> None:
        metrics = self.pipeline.metrics
        for dropped in result.dropped:
            metrics.partials_dropped.inc()
            log.error(
                "partial of window %s from partition %d arrived after the "
                "window was emitted and can no longer be corrected: "
                "%d posts, %d negative not in its counts",
                dropped.window.start,
                dropped.partition,
                dropped.window.posts,
                dropped.window.negative,
            )
        if result.gap_windows_skipped:
            log.warning(
                "merge: a quiet gap of more than %d windows; its %d oldest empty "
                "windows were not emitted one by one",
                self.detector.merger.max_gap_windows if self.detector.merger else 0,
                result.gap_windows_skipped,
            )
            metrics.window_gaps_skipped.inc(result.gap_windows_skipped)
        for report in result.windows:
            log.info(
                "window %s complete%s: %d posts, %d negative",
                report.window_start,
                "" if report.complete else " (a partition given up on)",
                report.posts,
                report.negative,
            )
            await self._publish_window(report)
            if not report.complete:
                metrics.windows_incomplete.inc()
        for amended in result.amended:
            await self._amend(amended)
        await self._send_triggers(result.triggers)
        await self.state.write_in_order(PARTITION, result.writes, is_merge_commit)

    async def _send_triggers(self, triggers: Sequence[Trigger]) -> None:
        """Send triggers (each with its signal id: a repeat is dropped downstream)."""
        pipeline = self.pipeline
        now = utc_now()
        deliveries = []
        for trigger in triggers:
            event = TriggerEvent(trigger, closed_at=now)
            deliveries.append(
                await pipeline.topics.triggers.send(
                    key=event.message_key, value=event.encode(), partition=0
                )
            )
            pipeline.metrics.triggers.labels(kind=trigger.kind).inc()
        await asyncio.gather(*deliveries)

    async def _amend(self, amended: AmendedWindow) -> None:
        """Rewrite the counts of an emitted window a late partial corrected."""
        settings = self.pipeline.settings
        window = amended.window
        log.warning(
            "window %s amended by a late partial: now %d posts, %d negative",
            window.start,
            window.posts,
            window.negative,
        )
        docs = [
            count_document(
                point,
                prefix=settings.index_prefix,
                utc_offset=settings.index_utc_offset,
                complete=amended.complete,
            )
            for point in amended_points(window, amended.verdicts)
        ]
        await self._write_windows(docs)
        self.pipeline.metrics.windows_amended.inc()

    async def _publish_window(self, report: WindowReport) -> None:
        pipeline, settings = self.pipeline, self.pipeline.settings
        now = utc_now()
        docs: list[Document] = [
            count_document(
                point,
                prefix=settings.index_prefix,
                utc_offset=settings.index_utc_offset,
                complete=report.complete,
            )
            for point in report.points
            if point.kind != "keyword" or point.observed > 0 or point.anomalous
        ]
        bursts = [Burst.from_update(update, now) for update in report.bursts]
        docs += [burst_document(b, prefix=settings.index_prefix) for b in bursts]
        # Documents first (idempotent by id), then the messages: a batch
        # handled again after a failed write sends each trigger once.
        await self._write_windows(docs)
        deliveries = []
        for burst in bursts:
            deliveries.append(
                await pipeline.topics.bursts.send(
                    key=burst.message_key, value=burst.encode()
                )
            )
            pipeline.metrics.bursts.labels(kind=burst.kind, phase=burst.phase).inc()
        await asyncio.gather(*deliveries)
        await self._send_triggers(report.triggers)
        pipeline.metrics.windows_merged.inc()

    async def _write_windows(self, docs: list[Document]) -> None:
        pipeline, settings = self.pipeline, self.pipeline.settings
        sink = pipeline.windows_sink
        if not docs or sink is None:
            return
        result = await until_written(
            lambda: sink.write(docs),
            initial=settings.es_retry_initial_seconds,
            maximum=settings.es_retry_max_seconds,
            on_retry=lambda exc, wait: pipeline.metrics.sink_retries.labels(
                sink="elasticsearch-windows"
            ).inc(),
            shutdown=pipeline.shutdown,
        )
        for rejected in result.rejected:
            # Refused for good (a mapping conflict, say): kept as a dead
            # letter with Elasticsearch's reason, so it can be fixed and
            # written again by hand; retrying would never succeed.
            await pipeline.dead_letter(
                stage=STAGE,
                reason=f"Elasticsearch refused window document {rejected.doc_id}: "
                f"{rejected.reason}",
                payload=orjson.dumps(
                    {"id": rejected.doc_id, "document": rejected.document},
                    default=str,
                ),
                topic=settings.topic_window_partials,
            )


def register(
    app: faust.App,
    pipeline: Pipeline,
    state: StateStore,
    rules: Callable[[], Sequence[AlertRule]],
    topics: Callable[[], Sequence[str]],
    stop_words: Callable[[], Iterable[str]] = tuple,
    topic_words: Callable[[], Mapping[str, Sequence[str]]] = dict,
) -> MergeStage:
    """Add the ``merge_windows`` agent to ``app``."""
    merge = MergeStage(pipeline, state, rules, topics, stop_words, topic_words)
    register_batch_agent(
        app,
        pipeline,
        topic=pipeline.topics.window_partials,
        name="merge_windows",
        batch_size=100,
        batch_seconds=0.05,
        handle=merge.handle,
    )
    return merge
