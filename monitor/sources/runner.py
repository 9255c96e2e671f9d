"""Running pollers durably: one asyncio task per source around ``run_source``.

:class:`SourceRunner` starts and stops the pollers of a sources file one by
one: its :meth:`~SourceRunner.start` and :meth:`~SourceRunner.stop` are what
:class:`~monitor.sources.leases.SourceLeases` calls as slots come and go, and
``monitor sources run`` starts them all. For each page, in this order:

1. the posts are published and acknowledged (``acks=all``);
2. rejected items are dead-lettered (stage ``source``) and acknowledged;
3. the cursor is written, with a health snapshot, to the state topic and
   acknowledged.

So a crash anywhere sends a page again (same post ids, absorbed downstream)
but never skips one. Stopping a poller lets it finish its page and write its
cursor, within a grace period; the health counters then go to the state topic
once more, so ``monitor sources status`` shows them from any worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from monitor.metrics import SourceMetrics
from monitor.records import DeadLetter, Post, bounded_dead_letter
from monitor.sources.base import Fetcher, Rejected, SourceHealth, run_source
from monitor.sources.config import HttpPollSource, RssSource, SourcesConfig
from monitor.sources.cursors import SourceState

if TYPE_CHECKING:
    from monitor.settings import Settings
    from monitor.sources.publisher import PostPublisher

log = logging.getLogger(__name__)

#: Seconds a stopping poller gets to finish its page and write its cursor
#: before it is cancelled (below the leases' own 10 s, so the final health
#: record still goes out).
STOP_GRACE_SECONDS = 7.0
#: Seconds a page's posts may take to be acknowledged before the page fails.
PUBLISH_SECONDS = 60.0
#: Seconds the final health record of a stopped poller may take.
FINAL_WRITE_SECONDS = 2.0
#: A health record is written at least this often (seconds) while polling,
#: and at most every half interval when no cursor moved.
MAX_REPORT_SECONDS = 60.0
#: Reject reasons kept as metric labels, per process; later ones are "other".
MAX_REASON_LABELS = 20
_REASON = re.compile(r"[a-z0-9_]{1,32}")

PollerSource = HttpPollSource | RssSource
DeadLetterSend = Callable[[Sequence[DeadLetter]], Awaitable[None]]


class Poller(NamedTuple):
    """A fetcher and how many pages it may fetch back to back (None: no cap)."""

    fetcher: Fetcher
    max_pages: int | None = None


def build_poller(
    source: PollerSource,
    *,
    max_future_seconds: float | None = None,
    trust_env: bool = False,
) -> Poller:
    """Build the real fetcher of a source from its sources-file entry.

    Args:
        source: The ``http_poll`` or ``rss`` entry.
        max_future_seconds: Refuse posts dated further ahead (None: no check).
        trust_env: Go through the proxies of the environment.

    """
    if isinstance(source, HttpPollSource):
        from monitor.sources.http_poll import HttpPollFetcher, options_from_config

        options = options_from_config(
            source, max_future_seconds=max_future_seconds, trust_env=trust_env
        )
        return Poller(HttpPollFetcher(options), options.max_pages_per_poll)
    from monitor.sources.rss import RssFetcher, rss_options_from_config

    rss = rss_options_from_config(
        source, max_future_seconds=max_future_seconds, trust_env=trust_env
    )
    return Poller(RssFetcher(rss), None)  # one feed document, one page


class Publisher(Protocol):
    """What the runner needs of :class:`~monitor.sources.publisher.PostPublisher`."""

    async def publish(self, post: Post) -> None:
        """Queue one post."""
        ...

    async def flush(self) -> None:
        """Wait until every queued post is acknowledged."""
        ...


class StateStore(Protocol):
    """What the runner needs of :class:`~monitor.sources.cursors.KafkaCursorStore`."""

    async def load_state(self, source: str) -> SourceState | None:
        """Return the last state record of ``source``, or None."""
        ...

    async def write(self, state: SourceState) -> None:
        """Write ``state``; returns once it is durable."""
        ...


def dead_letters_of(
    source: str, kind: str, rejected: Sequence[Rejected], *, failed_at: datetime
) -> list[DeadLetter]:
    """Return the dead letters of a page's rejected items (stage ``source``).

    The reason is ``<reason>: <detail>``; the payload is the raw item; the
    ``topic`` field says where it came from (``<kind>:<source>``). Pure.
    """
    return [
        bounded_dead_letter(
            stage="source",
            reason=f"{item.reason}: {item.detail}" if item.detail else item.reason,
            payload=item.raw,
            topic=f"{kind}:{source}",
            failed_at=failed_at,
            source=source,
        )
        for item in rejected
    ]


class KafkaDeadLetters:
    """Sends dead letters to their topic and waits for every ack (``acks=all``).

    Args:
        kafka_url: Kafka bootstrap.
        topic: The dead-letters topic.
        timeout: Seconds one batch may wait for its acknowledgements.

    """

    def __init__(self, kafka_url: str, topic: str, *, timeout: float = 30.0) -> None:
        self.kafka_url, self.topic, self.timeout = kafka_url, topic, timeout
        self._producer: Any = None

    async def start(self) -> None:
        """Connect to Kafka."""
        from aiokafka import AIOKafkaProducer

        from monitor.topics import bootstrap_servers

        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap_servers(self.kafka_url), acks="all"
            )
            await producer.start()
            self._producer = producer

    async def __call__(self, letters: Sequence[DeadLetter]) -> None:
        """Send ``letters`` keyed by source; return once all are acknowledged."""
        if self._producer is None:
            await self.start()
        futures = [
            await self._producer.send(
                self.topic, value=letter.dumps(), key=letter.source.encode("utf-8")
            )
            for letter in letters
        ]
        await asyncio.wait_for(asyncio.gather(*futures), self.timeout)

    async def close(self) -> None:
        """Disconnect (every batch sent was already acknowledged)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


@dataclass
class _Running:
    """One poller's task and what its reports compare against."""

    name: str
    source: PollerSource
    poller: Poller
    stop: asyncio.Event
    health: SourceHealth
    task: asyncio.Task[SourceHealth] | None = None
    loaded: bool = False
    cursor: str | None = None
    last_write_s: float = 0.0
    reported: SourceHealth = field(default_factory=SourceHealth)


class SourceRunner:
    """Starts and stops the pollers of a sources file, one task each.

    Args:
        config: The sources file; only its pollers are run.
        publisher: Publishes posts (``publish`` then ``flush`` = acknowledged).
            Shared by every poller: pages are sent one at a time, since a
            flush waits for everything queued.
        state: Durable cursors and health (the ``source-state`` topic).
        dead_letters: Sends rejected items and waits for the ack.
        metrics: Per-source metrics, or None.
        poller_factory: Builds a source's fetcher (the real ones by default).
        stop_grace: Seconds a stopping poller gets to finish its page.
        clock: Wall clock, epoch seconds.

    """

    def __init__(
        self,
        config: SourcesConfig,
        publisher: Publisher,
        state: StateStore,
        dead_letters: DeadLetterSend,
        *,
        metrics: SourceMetrics | None = None,
        poller_factory: Callable[[PollerSource], Poller] = build_poller,
        stop_grace: float = STOP_GRACE_SECONDS,
        clock: Callable[[], float] = time.time,
        backoff_cap: float = 300.0,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.state = state
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.poller_factory = poller_factory
        self.stop_grace = stop_grace
        self.clock = clock
        self.backoff_cap = backoff_cap
        self._running: dict[str, _Running] = {}
        self._publish_lock = asyncio.Lock()
        self._reasons: set[str] = set()

    @property
    def running(self) -> frozenset[str]:
        """The sources polled now."""
        return frozenset(self._running)

    def health(self, name: str) -> SourceHealth | None:
        """Return the live counters of a running source, or None."""
        running = self._running.get(name)
        return None if running is None else running.health

    async def start(self, name: str) -> None:
        """Start polling ``name`` (no-op if it already runs).

        Raises:
            KeyError: If ``name`` is not a poller of the sources file.

        """
        if name in self._running:
            return
        source = self.config.pollers[name]
        poller = self.poller_factory(source)
        run = _Running(name, source, poller, asyncio.Event(), SourceHealth())
        self._running[name] = run
        if self.metrics is not None:
            self.metrics.interval.labels(source=name).set(source.interval)
            self.metrics.polling_since.labels(source=name).set(self.clock())
            self.metrics.last_success.labels(source=name).set(0)
        run.task = asyncio.get_running_loop().create_task(
            self._poll(run), name=f"source-{name}"
        )

    async def stop(self, name: str) -> None:
        """Stop polling ``name``: its page finished and its cursor written.

        A poller that does not finish within ``stop_grace`` seconds is
        cancelled (its page is sent again on the next start). No-op if
        ``name`` is not running.
        """
        run = self._running.get(name)
        if run is None:
            return
        run.stop.set()
        try:
            if run.task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(run.task), self.stop_grace)
                except asyncio.TimeoutError:
                    log.warning(
                        "source %s did not finish its page in %.0f s; cancelled",
                        name,
                        self.stop_grace,
                    )
                    run.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await run.task
                except Exception:  # noqa: BLE001 - the poller failed: log, go on
                    log.exception("source %s stopped with an error", name)
            if run.loaded:
                try:
                    await asyncio.wait_for(self._write(run), FINAL_WRITE_SECONDS)
                except Exception as exc:  # noqa: BLE001 - the cursor is already saved
                    log.warning(
                        "source %s: final health record not written: %s", name, exc
                    )
        finally:
            if run.task is not None and not run.task.done():
                # stop() itself was cancelled (a rebalance gave up on it): the
                # poller must not outlive its entry, or a new start() would
                # poll the source twice.
                run.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run.task
            with contextlib.suppress(Exception):
                await run.poller.fetcher.close()
            self._running.pop(name, None)
            if self.metrics is not None:
                for gauge in (
                    self.metrics.interval,
                    self.metrics.polling_since,
                    self.metrics.last_success,
                    self.metrics.cursor_lag,
                ):
                    with contextlib.suppress(KeyError):
                        gauge.remove(name)

    async def stop_all(self) -> None:
        """Stop every poller (concurrently), each with its cursor written."""
        await asyncio.gather(*(self.stop(name) for name in list(self._running)))

    async def _poll(self, run: _Running) -> SourceHealth:
        cursors = _StateCursors(self, run)

        async def publish(posts: Sequence[Post]) -> None:
            # One page at a time: PostPublisher.flush waits for everything
            # queued, so two pollers flushing together could return before
            # one of them is acknowledged.
            async with self._publish_lock:
                # Bounded: a half-dead Kafka fails the page (sent again after
                # the backoff) instead of holding every source's lock.
                async with asyncio.timeout(PUBLISH_SECONDS):
                    for post in posts:
                        await self.publisher.publish(post)
                    await self.publisher.flush()

        async def reject(items: Sequence[Rejected]) -> None:
            letters = dead_letters_of(
                run.name,
                run.source.kind,
                items,
                failed_at=datetime.fromtimestamp(self.clock(), timezone.utc),
            )
            await self.dead_letters(letters)

        async def report(health: SourceHealth, cursor: str | None) -> None:
            await self._report(run, health)

        return await run_source(
            run.name,
            run.poller.fetcher,
            cursors,
            publish,
            interval=run.source.interval,
            reject=reject,
            stop=run.stop,
            health=run.health,
            clock=self.clock,
            backoff_cap=self.backoff_cap,
            max_pages=run.poller.max_pages,
            report=report,
        )

    async def _report(self, run: _Running, health: SourceHealth) -> None:
        """Count what changed since the last report; write health when due."""
        before = run.reported
        fetched = health.fetched - before.fetched
        accepted = health.accepted - before.accepted
        duplicates = health.duplicates - before.duplicates
        errors = health.errors - before.errors
        rejected = health.rejected - before.rejected
        if fetched:
            log.info(
                "source %s: %d page(s): %d accepted, %d rejected, %d duplicates",
                run.name,
                fetched,
                accepted,
                sum(rejected.values()),
                duplicates,
            )
        if self.metrics is not None:
            self._count(run.name, fetched, accepted, duplicates, errors, rejected)
            if health.last_success_epoch_s is not None:
                self.metrics.last_success.labels(source=run.name).set(
                    health.last_success_epoch_s
                )
            if health.cursor_lag_seconds is not None:
                self.metrics.cursor_lag.labels(source=run.name).set(
                    health.cursor_lag_seconds
                )
        run.reported = _copy(health)
        due = min(MAX_REPORT_SECONDS, run.source.interval / 2)
        if run.loaded and time.monotonic() - run.last_write_s >= due:
            await self._write(run)

    def _count(
        self,
        name: str,
        fetched: int,
        accepted: int,
        duplicates: int,
        errors: int,
        rejected: Counter[str],
    ) -> None:
        assert self.metrics is not None
        if fetched:
            self.metrics.pages_fetched.labels(source=name).inc(fetched)
        if accepted:
            self.metrics.posts_accepted.labels(source=name).inc(accepted)
        if duplicates:
            self.metrics.posts_duplicate.labels(source=name).inc(duplicates)
        if errors:
            self.metrics.poll_errors.labels(source=name).inc(errors)
        for reason, count in rejected.items():
            if count > 0:
                self.metrics.posts_rejected.labels(
                    source=name, reason=self._reason_label(reason)
                ).inc(count)

    def _reason_label(self, reason: str) -> str:
        """Bound the ``reason`` label: reasons come from fetchers."""
        if reason in self._reasons:
            return reason
        if _REASON.fullmatch(reason) and len(self._reasons) < MAX_REASON_LABELS:
            self._reasons.add(reason)
            return reason
        return "other"

    async def _write(self, run: _Running, *, saved_now: bool = False) -> None:
        health = run.health
        now = self.clock()
        if saved_now:
            # The cursor is written as the last step of a successful page.
            health = _copy(health)
            health.last_success_epoch_s = now
        await self.state.write(
            SourceState.of(
                run.name,
                run.source.kind,
                run.cursor,
                run.source.interval,
                health,
                now_epoch_s=now,
            )
        )
        run.last_write_s = time.monotonic()


class _StateCursors:
    """The :class:`CursorStore` one poller sees: its cursor with its health."""

    def __init__(self, runner: SourceRunner, run: _Running) -> None:
        self.runner, self.run = runner, run

    async def load(self, source: str) -> str | None:
        state = await self.runner.state.load_state(source)
        if state is not None:
            state.restore(self.run.health)
            # Counters restored from the record are not this process's news.
            self.run.reported = _copy(self.run.health)
            if self.runner.metrics is not None and state.last_success_epoch_s:
                self.runner.metrics.last_success.labels(source=source).set(
                    state.last_success_epoch_s
                )
        self.run.cursor = None if state is None else state.cursor
        self.run.loaded = True
        return self.run.cursor

    async def save(self, source: str, cursor: str) -> None:
        previous, self.run.cursor = self.run.cursor, cursor
        try:
            await self.runner._write(self.run, saved_now=True)
        except BaseException:
            self.run.cursor = previous
            raise


def _copy(health: SourceHealth) -> SourceHealth:
    return SourceHealth(
        fetched=health.fetched,
        accepted=health.accepted,
        rejected=Counter(health.rejected),
        duplicates=health.duplicates,
        errors=health.errors,
        last_success_epoch_s=health.last_success_epoch_s,
        cursor_lag_seconds=health.cursor_lag_seconds,
        last_error=health.last_error,
    )


class SourcePollers:
    """Everything that runs a sources file's pollers against Kafka, in one piece.

    Used by the worker (``leases=True``: each poller runs in one worker at a
    time, see :mod:`monitor.sources.leases`) and by ``monitor sources run``
    (every poller here, unless ``--leases``). :meth:`start` creates the
    source topics and connects; :meth:`stop` stops every poller (pages
    finished, cursors written) and disconnects.

    Args:
        settings: Resolved settings (``kafka_url`` set).
        config: The sources file.
        leases: Take pollers through the source-lease group.
        metrics: Per-source metrics, or None.
        poller_factory: Builds a source's fetcher (default: the real ones,
            refusing posts dated beyond ``settings.max_future_seconds``).

    """

    def __init__(
        self,
        settings: Settings,
        config: SourcesConfig,
        *,
        leases: bool,
        metrics: SourceMetrics | None = None,
        poller_factory: Callable[[PollerSource], Poller] | None = None,
    ) -> None:
        import functools

        from monitor.sources.cursors import KafkaCursorStore

        assert settings.kafka_url is not None
        self.settings = settings
        self.config = config
        # aiokafka producers need the running loop: made in start().
        self.publisher: PostPublisher | None = None
        self.store = KafkaCursorStore(
            settings.kafka_url,
            settings.topic_source_state,
            replicas=settings.topic_replicas,
        )
        self.dead_letters = KafkaDeadLetters(
            settings.kafka_url, settings.topic_dead_letters
        )
        self.runner = SourceRunner(
            config,
            self,
            self.store,
            self.dead_letters,
            metrics=metrics,
            poller_factory=poller_factory
            or functools.partial(
                build_poller,
                max_future_seconds=settings.max_future_seconds,
                trust_env=settings.http_proxy_from_env,
            ),
        )
        self.use_leases = leases
        self.leases: Any = None

    async def publish(self, post: Post) -> None:
        """Queue one post on the posts topic (the runner's publisher)."""
        if self.publisher is None:
            raise RuntimeError("SourcePollers.start() was not awaited")
        await self.publisher.publish(post)

    async def flush(self) -> None:
        """Wait until every queued post is acknowledged."""
        if self.publisher is not None:
            await self.publisher.flush()

    async def start(self) -> None:
        """Create the source topics, connect, and start (or lease) the pollers."""
        from monitor.sources.publisher import PostPublisher
        from monitor.topics import prepare_source_topics

        assert self.settings.kafka_url is not None
        await prepare_source_topics(self.settings)
        # A page is flushed and awaited as a whole: nothing gains from lingering.
        publisher = PostPublisher(
            self.settings.kafka_url, self.settings.topic_posts, linger_ms=0
        )
        await publisher.start()
        self.publisher = publisher
        await self.store.start()
        await self.dead_letters.start()
        if self.use_leases:
            from monitor.sources.leases import SourceLeases
            from monitor.topics import bootstrap_servers

            slots = await _partition_count(
                self.settings.kafka_url, self.settings.topic_source_leases
            )
            if slots != self.settings.source_slots:
                # Slots past the topic's partitions would never be assigned.
                log.warning(
                    "topic %s has %d partitions, not MONITOR_SOURCE_SLOTS=%d: "
                    "sources are laid on %d slots",
                    self.settings.topic_source_leases,
                    slots,
                    self.settings.source_slots,
                    slots,
                )
            self.leases = SourceLeases(
                list(self.config.pollers),
                self.runner.start,
                self.runner.stop,
                bootstrap=bootstrap_servers(self.settings.kafka_url),
                topic=self.settings.topic_source_leases,
                group_id=f"{self.settings.app_id}-sources",
                slots=slots,
                instance_id=self.settings.instance_id,
            )
            await self.leases.start()
        else:
            for name in self.config.pollers:
                await self.runner.start(name)

    async def stop(self) -> None:
        """Stop every poller (cursors written), leave the group, disconnect."""
        try:
            if self.leases is not None:
                await self.leases.stop()
            await self.runner.stop_all()
        finally:
            for close in (self.dead_letters.close, self.store.close):
                with contextlib.suppress(Exception):
                    await close()
            publisher, self.publisher = self.publisher, None
            if publisher is not None:
                with contextlib.suppress(Exception):
                    await publisher.close()


async def _partition_count(kafka_url: str, topic: str) -> int:
    """Return the partition count of an existing topic."""
    from aiokafka.admin import AIOKafkaAdminClient

    from monitor.errors import MonitorError
    from monitor.topics import bootstrap_servers

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(kafka_url))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    count = len(described.get("partitions") or [])
    if count < 1:
        raise MonitorError(f"topic {topic!r} has no partitions")
    return count
