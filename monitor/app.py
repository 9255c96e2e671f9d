"""The Faust app, built from Settings: wiring only."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from monitor.errors import MonitorError
from monitor.kafka import ensure_topics, faust_broker
from monitor.metrics import MonitorMetrics
from monitor.pipelines import Pipeline, index, score
from monitor.scoring import PostScorer
from monitor.settings import Settings
from monitor.sinks.elasticsearch import ElasticsearchSink, post_index_template
from monitor.topics import declare_topics, topic_partitions
from monitor.watchlist import load_watchlist

log = logging.getLogger(__name__)

CONSUMER_LAG_INTERVAL_SECONDS = 5.0


def create_app(settings: Settings, *, registry: CollectorRegistry | None = None) -> faust.App:
    """Build the worker's Faust app with every agent, /metrics and timers.

    Args:
        settings: Resolved settings: ``kafka_url`` and ``es_url`` must be set.
        registry: Prometheus registry for the app's metrics (a fresh one if None).
    """
    if settings.kafka_url is None or settings.es_url is None:
        raise MonitorError("create_app needs kafka_url and es_url; resolve servers first")
    app = faust.App(
        settings.app_id,
        broker=faust_broker(settings.kafka_url),
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replicas,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )
    topics = declare_topics(app, settings)
    registry = registry if registry is not None else CollectorRegistry()
    setup_prometheus_sensors(app, registry=registry, name_prefix="monitor_faust")
    metrics = MonitorMetrics.create(registry)
    watched = load_watchlist(settings.topics_file) if settings.topics_file else []
    scorer = PostScorer(
        watched,
        settings.label_thresholds,
        keywords_per_post=settings.keywords_per_post,
        model_path=settings.sentiment_model,
    )
    sink = ElasticsearchSink.connect(
        settings.es_url,
        api_key=settings.es_api_key,
        request_timeout=settings.es_request_timeout_seconds,
    )
    pipeline = Pipeline(
        settings=settings, topics=topics, metrics=metrics, scorer=scorer, posts_sink=sink
    )
    score.register(app, pipeline)
    index.register(app, pipeline)

    @app.timer(CONSUMER_LAG_INTERVAL_SECONDS)
    async def report_consumer_lag() -> None:
        consumer = app.consumer
        lag: dict[str, int] = defaultdict(int)
        for tp in consumer.assignment():
            position = await consumer.position(tp)
            if position is not None:
                lag[tp.topic] += max(consumer.highwater(tp) - position, 0)
        for topic, value in lag.items():
            metrics.consumer_lag.labels(topic=topic).set(value)

    @app.service
    class CloseSinks(faust.Service):
        async def on_stop(self) -> None:
            await sink.close()

    app.monitor_pipeline = pipeline  # type: ignore[attr-defined]
    return app


async def prepare_servers(settings: Settings, *, timeout: float = 120.0) -> None:
    """Create topics and index templates, waiting for the servers to answer.

    Runs before any process writes, so that topics get their partition
    counts and indices their mappings. Idempotent.
    """
    assert settings.kafka_url is not None and settings.es_url is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.5
    while True:
        sink = ElasticsearchSink.connect(settings.es_url, api_key=settings.es_api_key)
        try:
            await ensure_topics(
                settings.kafka_url, topic_partitions(settings), replicas=settings.topic_replicas
            )
            await sink.put_template(
                f"{settings.index_prefix}-posts", post_index_template(settings.index_prefix)
            )
            return
        except Exception as exc:
            if loop.time() >= deadline:
                raise MonitorError(
                    f"servers not ready after {timeout:.0f} s (Kafka {settings.kafka_url}, "
                    f"Elasticsearch {settings.es_url}): {exc}"
                ) from exc
            log.info("waiting for Kafka/Elasticsearch: %s", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        finally:
            await sink.close()
