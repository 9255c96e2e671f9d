"""Prometheus metrics of the pipeline, all defined here.

Labels take few values (``stage``, ``source``, ``kind``); keyword counts
belong in Elasticsearch, never in labels.
"""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
#: Event-time lag spans replays of old posts (hours, days) and live ones.
LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 604800)


#: Distinct ``source`` label values kept; later ones are counted as "other".
MAX_SOURCE_LABELS = 50


class SourceLabels:
    """Bounds the ``source`` label: it comes from producers, not from us.

    The first ``limit`` distinct sources keep their name; any later one is
    reported as ``other`` (it is still in Elasticsearch under its own name).
    """

    def __init__(self, limit: int = MAX_SOURCE_LABELS) -> None:
        self.limit = limit
        self._seen: set[str] = {"unknown"}

    def __call__(self, source: str) -> str:
        """Return the label value to use for ``source``."""
        if source in self._seen:
            return source
        if len(self._seen) < self.limit:
            self._seen.add(source)
            return source
        return "other"


class MonitorMetrics(NamedTuple):
    """The pipeline's metrics; build with :meth:`create`."""

    posts_consumed: Counter
    posts_scored: Counter
    posts_indexed: Counter
    posts_dead_lettered: Counter
    stage_seconds: Histogram
    event_lag_seconds: Histogram
    event_time_lag: Gauge
    es_bulk_errors: Counter
    es_bulk_seconds: Histogram
    sink_retries: Counter
    batch_retries: Counter
    batch_bisections: Counter
    batch_systemic_failures: Counter
    dedup_forgotten_early: Counter
    stage_pending_records: Gauge
    stage_last_progress: Gauge
    window_gaps_skipped: Counter
    consumer_lag: Gauge
    consumer_rewinds: Counter
    assigned_partitions: Gauge
    posts_late: Counter
    posts_duplicate: Counter
    posts_replayed: Counter
    windows_closed: Counter
    windows_merged: Counter
    windows_incomplete: Counter
    windows_amended: Counter
    score_cache: Counter
    partials_dropped: Counter
    bursts: Counter
    triggers: Counter
    tickets: Counter
    alert_seconds: Histogram
    notifications: Counter
    alert_notice_seconds: Histogram
    notices_waiting: Gauge
    notice_oldest_seconds: Gauge
    sla_last_sweep: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> MonitorMetrics:
        """Define every metric in ``registry`` (use a fresh one per test)."""
        metrics = cls(
            posts_consumed=Counter(
                "monitor_posts_consumed_total",
                "Records read from the posts topic, by source "
                "('unknown' if unreadable).",
                ["source"],
                registry=registry,
            ),
            posts_scored=Counter(
                "monitor_posts_scored_total",
                "Posts scored for sentiment, keywords and topics.",
                ["source"],
                registry=registry,
            ),
            posts_indexed=Counter(
                "monitor_posts_indexed_total",
                "Posts written to Elasticsearch (created or overwritten by id).",
                ["source"],
                registry=registry,
            ),
            posts_dead_lettered=Counter(
                "monitor_posts_dead_lettered_total",
                "Records sent to the dead-letter topic, by stage and source.",
                ["stage", "source"],
                registry=registry,
            ),
            stage_seconds=Histogram(
                "monitor_stage_seconds",
                "Mean processing time per record of each batch "
                "(one observation per batch).",
                ["stage"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            event_lag_seconds=Histogram(
                "monitor_event_lag_seconds",
                "Wall-clock time minus the post's published_at "
                "when a stage finishes it.",
                ["stage"],
                buckets=LAG_BUCKETS,
                registry=registry,
            ),
            event_time_lag=Gauge(
                "monitor_event_time_lag_seconds",
                "Wall-clock time minus published_at of the last post a stage finished.",
                ["stage"],
                registry=registry,
            ),
            es_bulk_errors=Counter(
                "monitor_es_bulk_errors_total",
                "Elasticsearch bulk failures: 'rejected' documents (dead-lettered) and "
                "'unavailable' attempts (retried).",
                ["kind"],
                registry=registry,
            ),
            es_bulk_seconds=Histogram(
                "monitor_es_bulk_seconds",
                "Duration of one Elasticsearch bulk request.",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            sink_retries=Counter(
                "monitor_sink_retries_total",
                "Batches retried because a sink was unavailable.",
                ["sink"],
                registry=registry,
            ),
            batch_retries=Counter(
                "monitor_batch_retries_total",
                "Batches a stage failed to finish and is processing again "
                "(nothing is acknowledged until a batch succeeds).",
                ["stage"],
                registry=registry,
            ),
            batch_bisections=Counter(
                "monitor_batch_bisections_total",
                "Batches split in two because they kept failing with a "
                "non-transient error (the record that fails alone is dead-lettered).",
                ["stage"],
                registry=registry,
            ),
            batch_systemic_failures=Counter(
                "monitor_batch_systemic_failures_total",
                "Batches whose every record failed alike (a fault of the code or "
                "a dependency, not of the data): held and retried, not bisected.",
                ["stage"],
                registry=registry,
            ),
            dedup_forgotten_early=Counter(
                "monitor_dedup_forgotten_early_total",
                "Post ids forgotten before MONITOR_DEDUP_HORIZON_SECONDS because "
                "MONITOR_DEDUP_MAX_IDS was reached (the horizon is shorter).",
                registry=registry,
            ),
            stage_pending_records=Gauge(
                "monitor_stage_pending_records",
                "Records a stage has taken and not yet finished (0 when idle).",
                ["stage"],
                registry=registry,
            ),
            stage_last_progress=Gauge(
                "monitor_stage_last_progress_timestamp_seconds",
                "Unix time a stage last finished records (or started); with "
                "pending records, an old value means the stage is stuck.",
                ["stage"],
                registry=registry,
            ),
            window_gaps_skipped=Counter(
                "monitor_window_gap_windows_skipped_total",
                "Empty windows of a very long quiet gap not emitted one by one "
                "(detectors are fed the most recent part of the gap).",
                registry=registry,
            ),
            assigned_partitions=Gauge(
                "monitor_assigned_partitions",
                "Partitions of each topic assigned to this worker now.",
                ["topic"],
                registry=registry,
            ),
            consumer_lag=Gauge(
                "monitor_consumer_lag",
                "Messages not yet consumed (highwater minus position) per topic.",
                ["topic"],
                registry=registry,
            ),
            consumer_rewinds=Counter(
                "monitor_consumer_rewinds_total",
                "Partitions sought back because the consumer had read past "
                "records its agent never got (a Faust rebalance race; "
                "stages/delivery.py). Any increase is worth a look at the log.",
                ["topic"],
                registry=registry,
            ),
            posts_late=Counter(
                "monitor_posts_late_total",
                "Posts not counted because their window had closed: later than "
                "the grace period, or a redelivery of a post already counted.",
                registry=registry,
            ),
            posts_duplicate=Counter(
                "monitor_posts_duplicate_total",
                "Later copies of a post id already counted within the dedup "
                "horizon: neither counted nor indexed again (the first wins).",
                registry=registry,
            ),
            posts_replayed=Counter(
                "monitor_posts_replayed_total",
                "Records read again at or below their partition's counted offset "
                "(after a restart, a rebalance or a retried batch): not counted "
                "again.",
                registry=registry,
            ),
            windows_closed=Counter(
                "monitor_window_partials_total",
                "Windows closed per partition (partials sent to the merge).",
                registry=registry,
            ),
            windows_merged=Counter(
                "monitor_windows_total",
                "Complete windows evaluated (every partition merged).",
                registry=registry,
            ),
            windows_incomplete=Counter(
                "monitor_windows_incomplete_total",
                "Windows completed on the timeout, without every partition.",
                registry=registry,
            ),
            score_cache=Counter(
                "monitor_score_cache_lookups_total",
                "Texts looked up in the score cache, by result (hit or miss); "
                "hit rate = hit / (hit + miss).",
                ["result"],
                registry=registry,
            ),
            windows_amended=Counter(
                "monitor_windows_amended_total",
                "Emitted windows corrected by a partition's late partial.",
                registry=registry,
            ),
            partials_dropped=Counter(
                "monitor_window_partials_dropped_total",
                "Partials of windows emitted too long ago to correct (logged).",
                registry=registry,
            ),
            bursts=Counter(
                "monitor_bursts_total",
                "Burst updates by series kind and phase.",
                ["kind", "phase"],
                registry=registry,
            ),
            triggers=Counter(
                "monitor_triggers_total",
                "Rule triggers sent to the ticket policy, by rule kind.",
                ["kind"],
                registry=registry,
            ),
            tickets=Counter(
                "monitor_ticket_decisions_total",
                "What the ticket policy did with triggers (opened, folded, ...).",
                ["outcome"],
                registry=registry,
            ),
            alert_seconds=Histogram(
                "monitor_alert_seconds",
                "From a window's close to its ticket being saved.",
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
                registry=registry,
            ),
            notifications=Counter(
                "monitor_notifications_total",
                "Notification deliveries by channel kind and status.",
                ["channel", "status"],
                registry=registry,
            ),
            alert_notice_seconds=Histogram(
                "monitor_alert_notice_seconds",
                "From the crossing post's posts-record timestamp to the first "
                "channel accepting (2xx) its incident's notice.",
                buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300),
                registry=registry,
            ),
            notices_waiting=Gauge(
                "monitor_notices_waiting",
                "Due (notice, channel) pairs the sender could not send in its "
                "last round (channels at their per-minute limit).",
                registry=registry,
            ),
            notice_oldest_seconds=Gauge(
                "monitor_notice_oldest_pending_seconds",
                "Age of the oldest due notice still in an outbox (0 if none).",
                registry=registry,
            ),
            sla_last_sweep=Gauge(
                "monitor_sla_last_sweep_timestamp_seconds",
                "Unix time the SLA checker last finished a sweep of open tickets "
                "(0 until the first one); an old value means breaches are not "
                "being escalated.",
                registry=registry,
            ),
        )
        # Series the alert rules read with increase(): exported at 0 from the
        # start, so the first event after a start is an increase Prometheus sees.
        for kind in ("rejected", "unavailable"):
            metrics.es_bulk_errors.labels(kind=kind)
        metrics.sink_retries.labels(sink="elasticsearch")
        return metrics


class SourceMetrics(NamedTuple):
    """Per-source ingestion metrics (webhooks now, pollers too); see :meth:`create`.

    The ``source`` label is a configured source name, bounded by
    :class:`SourceLabels`; ``reason`` and ``status`` take a handful of values.
    """

    posts_accepted: Counter
    posts_rejected: Counter
    posts_duplicate: Counter
    requests_refused: Counter
    pages_fetched: Counter
    poll_errors: Counter
    last_success: Gauge
    cursor_lag: Gauge
    interval: Gauge
    polling_since: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SourceMetrics:
        """Define the source metrics in ``registry`` (use a fresh one per test).

        The poller gauges (last success, cursor lag, interval, polling since)
        exist only on the worker that polls the source now: they are removed
        when its poller stops, so a source that moved to another worker does
        not look stale on the old one.
        """
        return cls(
            posts_accepted=Counter(
                "monitor_source_posts_accepted_total",
                "Posts a source delivered that Kafka acknowledged, by source.",
                ["source"],
                registry=registry,
            ),
            posts_rejected=Counter(
                "monitor_source_posts_rejected_total",
                "Posts a source delivered that were refused, by source and reason "
                "(invalid: not a valid post).",
                ["source", "reason"],
                registry=registry,
            ),
            posts_duplicate=Counter(
                "monitor_source_posts_duplicate_total",
                "Posts dropped at the source as an exact repeat (same source and "
                "id) of a recent one.",
                ["source"],
                registry=registry,
            ),
            requests_refused=Counter(
                "monitor_source_requests_refused_total",
                "Webhook requests refused as a whole, by source and HTTP status "
                "(401 signature, 413 size, 415 type, 422 nothing valid, 429 rate, "
                "503 Kafka unavailable).",
                ["source", "status"],
                registry=registry,
            ),
            pages_fetched=Counter(
                "monitor_source_pages_fetched_total",
                "Pages a poller fetched and parsed, by source.",
                ["source"],
                registry=registry,
            ),
            poll_errors=Counter(
                "monitor_source_poll_errors_total",
                "Failed poll attempts (fetch, publish, dead letter or cursor "
                "write), retried with backoff, by source.",
                ["source"],
                registry=registry,
            ),
            last_success=Gauge(
                "monitor_source_last_success_timestamp_seconds",
                "Unix time of the source's last successful poll (0: none known), "
                "on the worker polling it.",
                ["source"],
                registry=registry,
            ),
            cursor_lag=Gauge(
                "monitor_source_cursor_lag_seconds",
                "Age of the newest post of the last page with posts (0 once the "
                "backlog is read), on the worker polling the source.",
                ["source"],
                registry=registry,
            ),
            interval=Gauge(
                "monitor_source_interval_seconds",
                "The source's polling interval, on the worker polling it.",
                ["source"],
                registry=registry,
            ),
            polling_since=Gauge(
                "monitor_source_polling_since_timestamp_seconds",
                "Unix time this worker started polling the source; present only "
                "while it does.",
                ["source"],
                registry=registry,
            ),
        )
