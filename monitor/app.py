"""The Faust app, built from Settings: wiring only."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, cast

import faust
from faust.sensors.prometheus import PrometheusMonitor, setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from monitor.analysis.topics import TopicMatcher
from monitor.config.ruleswatch import RulesWatcher
from monitor.errors import MonitorError
from monitor.metrics import MonitorMetrics, SourceMetrics
from monitor.pipelines import alert, count, detect, partitions, score
from monitor.pipelines.batches import Pipeline
from monitor.services.ticketing import TicketService
from monitor.settings import Settings
from monitor.sinks.elasticsearch.bulk import ElasticsearchSink
from monitor.sinks.elasticsearch.links import LinkLedger
from monitor.sinks.elasticsearch.templates import (
    burst_index_template,
    count_index_template,
    post_index_template,
)
from monitor.sinks.elasticsearch.tickets import TicketStore
from monitor.sinks.notifiers import Notifier
from monitor.sinks.statelog import StateLog
from monitor.sources.config import SourcesConfig, load_sources
from monitor.sources.runner import SourcePollers
from monitor.stages.score import PostScorer, scorer_for
from monitor.topics import (
    bootstrap_servers,
    declare_topics,
    faust_broker,
    pace_empty_fetches,
)
from monitor.web.actionlinks import ActionLinks, action_links_app
from monitor.web.api import api_app
from monitor.web.auth import Authenticator
from monitor.web.console import console_app
from monitor.web.feed import TicketEventFollower, TicketEventPublisher, TicketFeed
from monitor.web.ingest import KafkaPublish, ingest_app, webhook_endpoints
from monitor.web.links import ActionLinkIssuer
from monitor.web.server import faust_web_settings

log = logging.getLogger(__name__)


class PerBatchSensors(PrometheusMonitor):
    """Faust's Prometheus sensor without its four per-record hooks.

    Faust calls a sensor when each record comes in, enters and leaves a
    stream and is acknowledged. With their label lookups these hooks cost
    about 5 % of a busy worker's CPU (py-spy), for counts the product
    exports itself per batch (``monitor_posts_consumed_total``,
    ``monitor_stage_seconds``, ``monitor_consumer_lag``). Faust's send,
    commit, rebalance, assignment and web metrics stay; its per-record
    ``monitor_faust_messages_*`` and ``*_events_*`` series stay at 0.
    """

    @classmethod
    def replacing(cls, sensor: object) -> PerBatchSensors:
        """Take over the metrics ``setup_prometheus_sensors`` gave ``sensor``."""
        if not isinstance(sensor, PrometheusMonitor):
            raise MonitorError(f"not Faust's Prometheus sensor: {sensor!r}")
        return cls(metrics=sensor._metrics)

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        """Not counted: see the class."""

    def on_stream_event_in(
        self, tp: Any, offset: int, stream: Any, event: Any
    ) -> dict[str, Any] | None:
        """Not counted: see the class."""
        return None

    def on_stream_event_out(
        self,
        tp: Any,
        offset: int,
        stream: Any,
        event: Any,
        state: dict[str, Any] | None = None,
    ) -> None:
        """Not counted: see the class."""

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """Not counted: see the class."""


def create_app(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    env: Mapping[str, str] | None = None,
) -> faust.App:
    """Build the worker's Faust app with every agent, /metrics, the API and timers.

    Args:
        settings: Resolved settings: ``kafka_url`` and ``es_url`` must be set.
        registry: Prometheus registry for the app's metrics (a fresh one if None).
        env: Where notification channels find their ``${NAME}`` secrets
            (``os.environ`` if None).

    Raises:
        ConfigError: A bad rules file, API token list or channel setting.

    """
    if settings.kafka_url is None or settings.es_url is None:
        raise MonitorError(
            "create_app needs kafka_url and es_url; resolve servers first"
        )
    pace_empty_fetches()
    app = _faust_app(settings, settings.kafka_url)
    topics = declare_topics(app, settings)
    registry = registry if registry is not None else CollectorRegistry()
    setup_prometheus_sensors(app, registry=registry, name_prefix="monitor_faust")
    app.monitor = PerBatchSensors.replacing(app.monitor)
    metrics = MonitorMetrics.create(registry)
    rules = (
        RulesWatcher(
            settings.rules,
            bucket_seconds=settings.bucket_seconds,
            detector_window_seconds=settings.window_seconds,
        )
        if settings.rules
        else None
    )
    # Without a separate watch list, the rules file's topics are watched.
    scorer = scorer_for(settings, rules.current.topics if rules else ())
    sink = ElasticsearchSink.connect(
        settings.es_url,
        templates=index_templates(settings),
        api_key=settings.es_api_key,
        request_timeout=settings.es_request_timeout_seconds,
    )
    pipeline = Pipeline(
        settings=settings,
        topics=topics,
        metrics=metrics,
        scorer=scorer,
        posts_sink=sink.with_op_type("create"),  # the first version of a post wins
    )
    pipeline.windows_sink = sink

    def current_rules() -> tuple[Any, ...]:
        return rules.current.rules if rules else ()

    def current_topics() -> list[str]:
        return list(scorer.matcher.names)

    def current_stop_words() -> tuple[str, ...]:
        return rules.current.stop_words if rules else ()

    def current_topic_words() -> dict[str, tuple[str, ...]]:
        return scorer.matcher.keywords

    # its high watermarks come from the hot path's consumer (score.register)
    counter = count.CountStage(
        pipeline, StateLog(topics.count_state, settings.kafka_url)
    )
    merger = detect.register(
        app,
        pipeline,
        StateLog(topics.merge_state, settings.kafka_url),
        current_rules,
        current_topics,
        current_stop_words,
        current_topic_words,
    )
    hot_path = score.register(app, pipeline, counter)
    partitions.register(app, pipeline, counter, merger, hot_path)
    if rules is not None:
        _reload_rules(app, settings, rules, scorer)

    @app.service
    class CloseSinks(faust.Service):
        async def on_stop(self) -> None:
            await sink.close()

    service = _ticketing(app, settings, pipeline, rules, env)
    _sources(app, settings, registry, env)
    app.monitor_tickets = service  # type: ignore[attr-defined]

    app.monitor_pipeline = pipeline  # type: ignore[attr-defined]
    app.monitor_rules = rules  # type: ignore[attr-defined]
    return app


def _faust_app(settings: Settings, kafka_url: str) -> faust.App:
    """Build the Faust app itself: broker, consumer group, web server."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=faust_broker(kafka_url),
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replicas,
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        # Faust's default: a rebalance or a stop waits until the agents have
        # acknowledged what they were handed.
        stream_wait_empty=True,
        producer_linger=settings.producer_linger_seconds,
        consumer_auto_offset_reset="earliest",
        consumer_group_instance_id=settings.instance_id,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        # Faust's own pages (/router, /table, /, ...) answer without a token:
        # only /metrics and /api are served.
        **faust_web_settings(),
    )


def _reload_rules(
    app: faust.App, settings: Settings, rules: RulesWatcher, scorer: PostScorer
) -> None:
    """Check the rules file for changes; rematch topics when they come from it."""
    if not settings.topics_file:

        def rematch(ruleset: Any) -> None:
            scorer.matcher = TopicMatcher(list(ruleset.topics))

        rules.on_change = rematch

    @app.timer(settings.rules_reload_seconds)
    async def reload_rules() -> None:
        try:
            rules.check()
        except Exception:  # noqa: BLE001 - a timer must not crash the worker
            log.exception("checking the rules file failed")


def _ticketing(
    app: faust.App,
    settings: Settings,
    pipeline: Pipeline,
    rules: RulesWatcher | None,
    env: Mapping[str, str] | None,
) -> TicketService:
    """Wire the ticket service: alert agent, notifier, SLA timer and the API."""
    assert settings.es_url is not None and settings.kafka_url is not None
    env = os.environ if env is None else env
    metrics = pipeline.metrics
    auth = Authenticator.from_spec(settings.api_tokens)  # fails fast on a bad entry

    def notifier_for(ruleset: Any) -> Notifier:
        channels = ruleset.channels if ruleset is not None else {}
        return Notifier(
            channels,
            env,
            console_url=settings.console_url,
            link_issuer=ActionLinkIssuer.from_settings(settings),
            trust_env=settings.http_proxy_from_env,
        )

    notifier = notifier_for(rules.current if rules else None)  # fails fast too
    store = TicketStore.connect(
        settings.es_url,
        settings.index_prefix,
        api_key=settings.es_api_key,
        request_timeout=settings.es_request_timeout_seconds,
    )
    # The feed has a producer of its own, not Faust's: Faust holds its sends
    # while the worker's consumer group rebalances (a minute at worst), and a
    # console change must reach the other consoles regardless.
    feed_producer: dict[str, Any] = {}
    feed_bootstrap = bootstrap_servers(settings.kafka_url)

    async def send_feed(key: bytes, value: bytes) -> None:
        producer = feed_producer.get("producer")
        if producer is None:
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(bootstrap_servers=feed_bootstrap, linger_ms=0)
            await producer.start()
            feed_producer["producer"] = producer
        await producer.send_and_wait(settings.topic_tickets, value, key=key)

    publisher = TicketEventPublisher(send_feed)
    feed = TicketFeed()
    follower = TicketEventFollower(feed, feed_bootstrap, settings.topic_tickets)

    async def stop_feed(_: Any = None) -> None:
        """Stop following and publishing (idempotent): sends what is queued."""
        await follower.stop()
        await publisher.stop()
        producer = feed_producer.pop("producer", None)
        if producer is not None:
            await producer.stop()

    async def start_feed(_: Any = None) -> None:
        publisher.start()
        follower.start()

    # The feed starts with the web server, not with the Faust services: those
    # start only once the worker's consumer group has settled (a minute when a
    # member is slow to rejoin), and a change made through this worker's API
    # meanwhile must still reach the other consoles, as this console must
    # hear theirs.
    feed_web_app = app.web.web_app  # type: ignore[attr-defined]
    feed_web_app.on_startup.append(start_feed)
    feed_web_app.on_cleanup.append(stop_feed)

    def on_event(ticket: Any, event: Any) -> None:
        _count_delivery(metrics, event)
        publisher.offer(ticket, event)

    service = TicketService(
        store,
        rules if rules is not None else (lambda: None),
        notifier=notifier,
        retry_initial=settings.es_retry_initial_seconds,
        retry_max=settings.es_retry_max_seconds,
        on_event=on_event,
    )
    alert.register(app, pipeline, service)

    if rules is not None:
        previous = rules.on_change

        def on_rules_change(ruleset: Any) -> None:
            if previous is not None:
                previous(ruleset)
            try:
                fresh = notifier_for(ruleset)
            except MonitorError as exc:
                log.error("new channels not usable, keeping the old ones: %s", exc)
                return
            app.loop.create_task(_swap_notifier(service, fresh))

        rules.on_change = on_rules_change

    @app.timer(settings.sla_check_seconds)
    async def enforce_sla() -> None:
        try:
            await service.sweep_sla()
            metrics.sla_last_sweep.set_to_current_time()
        except Exception:  # noqa: BLE001 - a timer must not crash the worker
            log.exception("SLA sweep failed; trying again next time")

    @app.service
    class Tickets(faust.Service):
        async def on_start(self) -> None:
            current = _own_notifier(service)
            if current is not None:
                await current.start()

        async def on_stop(self) -> None:
            await stop_feed()
            await service.drain(timeout=5)
            await service.close()
            current = _own_notifier(service)
            if current is not None:
                await current.close()
            await store.close()

    # Faust types app.web as the base Web; the aiohttp driver has web_app.
    web_app = app.web.web_app  # type: ignore[attr-defined]
    issuer = ActionLinkIssuer.from_settings(settings)
    if issuer is not None:
        ledger = LinkLedger.connect(
            settings.es_url, settings.index_prefix, api_key=settings.es_api_key
        )
        web_app.add_subapp(
            "/api/links", action_links_app(service, ActionLinks(issuer, ledger))
        )
    web_app.add_subapp("/api", api_app(service, auth, feed))
    web_app.add_subapp("/console", console_app())
    return service


def _sources(
    app: faust.App,
    settings: Settings,
    registry: CollectorRegistry,
    env: Mapping[str, str] | None,
) -> None:
    """Wire the sources file (MONITOR_SOURCES): webhooks and leased pollers."""
    if settings.sources is None or settings.kafka_url is None:
        return
    config = load_sources(settings.sources, env)  # fails fast on a bad file
    metrics = SourceMetrics.create(registry)
    if config.webhooks:
        _ingest(app, settings, config, metrics)
    if config.pollers:
        _pollers(app, settings, config, metrics)


def _ingest(
    app: faust.App,
    settings: Settings,
    config: SourcesConfig,
    metrics: SourceMetrics,
) -> None:
    """Mount ``/ingest`` for the webhook sources."""
    assert settings.kafka_url is not None
    publish = KafkaPublish(settings.kafka_url, settings.topic_posts)

    @app.service
    class IngestPublisher(faust.Service):
        async def on_start(self) -> None:
            await publish.connect()

        async def on_stop(self) -> None:
            await publish.close()

    web_app = app.web.web_app  # type: ignore[attr-defined]
    web_app.add_subapp(
        "/ingest",
        ingest_app(
            webhook_endpoints(config, settings.ingest_max_body_bytes),
            publish,
            metrics=metrics,
            max_future_seconds=settings.max_future_seconds,
        ),
    )


def _pollers(
    app: faust.App,
    settings: Settings,
    config: SourcesConfig,
    metrics: SourceMetrics,
) -> None:
    """Run the polling sources, each in one worker at a time (source leases).

    The service creates the ``source-leases`` and ``source-state`` topics and
    joins the lease group as it starts; as it stops, every poller here
    finishes its page and writes its cursor before the group is left.
    """
    pollers = SourcePollers(settings, config, leases=True, metrics=metrics)

    @app.service
    class SourcePollerService(faust.Service):
        async def on_start(self) -> None:
            await pollers.start()

        async def on_stop(self) -> None:
            await pollers.stop()

    app.monitor_source_pollers = pollers  # type: ignore[attr-defined]


async def _swap_notifier(service: TicketService, fresh: Notifier) -> None:
    await fresh.start()
    old, service.notifier = _own_notifier(service), fresh
    if old is not None:
        await service.drain(timeout=10)  # let deliveries in flight finish
        await old.close()


def _own_notifier(service: TicketService) -> Notifier | None:
    """Return the service's notifier as the concrete one it is here.

    TicketService types it as the narrower ``ticketing.Notifier`` protocol
    (no start/close); :func:`_ticketing` and :func:`_swap_notifier` only ever
    install :class:`monitor.sinks.notifiers.Notifier`.
    """
    return cast(Notifier | None, service.notifier)


def _count_delivery(metrics: Any, event: Any) -> None:
    if event.action == "delivery":
        metrics.notifications.labels(
            channel=event.details.get("channel", "?"),
            status=event.details.get("status", "?"),
        ).inc()


def index_templates(settings: Settings) -> dict[str, dict[str, Any]]:
    """Return the index templates the worker puts before its first write."""
    prefix = settings.index_prefix
    return {
        f"{prefix}-posts": post_index_template(prefix),
        f"{prefix}-counts": count_index_template(prefix),
        f"{prefix}-bursts": burst_index_template(prefix),
    }
