"""Faust agents: thin wiring that moves records between topics."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import faust
import orjson
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from faust.types import TP

from monitor.errors import SinkUnavailable
from monitor.metrics import MonitorMetrics, SourceLabels
from monitor.records import (
    bounded_dead_letter,
    utc_now,
)
from monitor.settings import Settings
from monitor.sinks.base import DocumentSink
from monitor.sinks.retry import Shutdown, backoff_delays
from monitor.stages.delivery import DeliveryWatch
from monitor.stages.score import PostScorer
from monitor.topics import Topics

log = logging.getLogger(__name__)

#: Dead letters remembered to send each record's once (per stage, per process).
RECENT_DEAD_LETTERS = 10_000
#: Backoff for a batch whose handler failed, doubling up to the maximum.
BATCH_RETRY_INITIAL_SECONDS = 0.5
BATCH_RETRY_MAX_SECONDS = 30.0


@dataclass
class Pipeline:
    """What the agents share: settings, topics, metrics and the sinks."""

    settings: Settings
    topics: Topics
    metrics: MonitorMetrics
    scorer: PostScorer
    posts_sink: DocumentSink
    windows_sink: DocumentSink | None = None
    source_label: SourceLabels = field(default_factory=SourceLabels)
    #: set when the worker is asked to stop (see :func:`start_shutdown_clock`)
    shutdown: Shutdown = field(default_factory=Shutdown)
    #: (stage, topic, partition, offset) of recent dead letters: a batch
    #: handled again (a retry, a bisection) does not set the same record
    #: aside twice
    lettered: OrderedDict[tuple[str, str, int, int], None] = field(
        default_factory=OrderedDict
    )
    #: what each batch agent was handed, against the consumer's positions
    delivery: DeliveryWatch[TP] = field(default_factory=DeliveryWatch)

    async def dead_letter(
        self,
        *,
        stage: str,
        reason: str,
        payload: bytes | str | None,
        topic: str,
        partition: int | None = None,
        offset: int | None = None,
        source: str = "unknown",
        post_id: str | None = None,
    ) -> None:
        """Send a record a stage gave up on to the dead-letter topic, and count it.

        The letter is bounded by :func:`~monitor.records.bounded_dead_letter`
        (payload and reason cut in bytes), so that the broker always takes it:
        a dead letter refused for its size would hold the batch forever.
        A record already dead-lettered by the same stage (the same batch
        handled again) is not sent twice.
        """
        where = None
        if partition is not None and offset is not None:
            where = (stage, topic, partition, offset)
            if where in self.lettered:
                return
        letter = bounded_dead_letter(
            stage=stage,
            reason=reason,
            payload=payload,
            topic=topic,
            partition=partition,
            offset=offset,
            source=source,
            post_id=post_id,
            failed_at=utc_now(),
        )
        log.warning(
            "dead letter from %s (post %s, %s[%s]@%s): %s",
            stage,
            letter.post_id,
            topic,
            partition,
            offset,
            letter.reason[:500],
        )
        delivery = await self.topics.dead_letters.send(
            key=(letter.post_id or "").encode("utf-8") or None, value=letter.dumps()
        )
        await delivery  # raises if the broker refused it: the batch is retried
        if where is not None:
            self.lettered[where] = None
            if len(self.lettered) > RECENT_DEAD_LETTERS:
                self.lettered.popitem(last=False)
        self.metrics.posts_dead_lettered.labels(
            stage=stage, source=self.source_label(source)
        ).inc()

    async def dead_letter_event(
        self,
        stage: str,
        event: faust.EventT,
        reason: str,
        *,
        source: str = "unknown",
        post_id: str | None = None,
    ) -> None:
        """Dead-letter a consumed event with its raw value and where it came from."""
        message = event.message
        await self.dead_letter(
            stage=stage,
            reason=reason,
            payload=event.value,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            source=source,
            post_id=post_id,
        )


def _identity(event: faust.EventT) -> dict[str, str]:
    """Return an invalid record's post id and source, if it has them."""
    try:
        data = orjson.loads(event.value)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    # ``post_id`` on scored posts, ``id`` on raw posts
    found = {
        "post_id": data.get("post_id", data.get("id")),
        "source": data.get("source"),
    }
    return {field: value for field, value in found.items() if isinstance(value, str)}


BatchHandler = Callable[["Pipeline", Sequence[faust.EventT]], Awaitable[None]]

#: Exit status of a worker that abandoned unfinished batches on shutdown
#: (EX_TEMPFAIL): nothing was acknowledged that was not done.
EXIT_ABANDONED = 75


def is_transient(exc: BaseException) -> bool:
    """Return True for a failure that waiting cures: an outage, not bad data.

    Transient failures are retried with backoff for as long as they last and
    never bisected or dead-lettered: an outage delays posts, it never turns
    them into dead letters. Everything else is a fault of the batch (or of
    the code on some record of it) and is bisected after
    ``batch_max_attempts``.
    """
    # Faust wraps producer errors (ProducerSendError from KafkaTimeoutError):
    # judge the whole chain of causes, innermost included.
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, SinkUnavailable):
        return True
    if isinstance(exc, KafkaError):
        # aiokafka marks broker-side conditions that a retry may cure
        # (timeouts, leader moves, connection loss); a record too large is not.
        return bool(getattr(exc, "retriable", False)) or isinstance(
            exc, KafkaConnectionError | KafkaTimeoutError
        )
    return isinstance(exc, TimeoutError | ConnectionError)


def register_batch_agent(
    app: faust.App,
    pipeline: Pipeline,
    *,
    topic: faust.TopicT,
    name: str,
    batch_size: int,
    batch_seconds: float,
    handle: BatchHandler,
    settle: Callable[[Sequence[faust.EventT]], None] | None = None,
) -> faust.types.AgentT:
    """Add an agent that hands ``handle`` batches of raw events from ``topic``.

    See :func:`consume_batches` for what happens to a batch that fails.
    """

    async def consume(stream: faust.StreamT) -> None:
        await consume_batches(
            stream,
            pipeline,
            name=name,
            batch_size=batch_size,
            batch_seconds=batch_seconds,
            handle=handle,
            settle=settle,
        )

    consume.__name__ = consume.__qualname__ = name  # Faust names the agent after it
    return app.agent(topic, name=name)(consume)


async def consume_batches(
    stream: faust.StreamT,
    pipeline: Pipeline,
    *,
    name: str,
    batch_size: int,
    batch_seconds: float,
    handle: BatchHandler,
    settle: Callable[[Sequence[faust.EventT]], None] | None = None,
) -> None:
    """Hand ``handle`` batches of events; never lose one, never stall on one.

    Faust acknowledges a ``take_events`` batch when the agent moves on, even
    if the handler raised, so a batch is only let go once it is done:

    - a transient failure (:func:`is_transient`) is retried with backoff for
      as long as it lasts;
    - any other failure is retried ``batch_max_attempts`` times, then the
      batch is bisected in offset order and the halves handled on their own,
      down to the one record that fails alone, which becomes a dead letter
      with the error as its reason. Handlers are idempotent (records are
      keyed by post id, windows by offset), so handling a part again is safe;
    - when the worker is stopping, a batch that fails is abandoned: the
      process exits without acknowledging it (:data:`EXIT_ABANDONED`), and it
      is redelivered after the restart.
    """
    metrics = pipeline.metrics
    pending = metrics.stage_pending_records.labels(stage=name)
    progress = metrics.stage_last_progress.labels(stage=name)
    progress.set(time.time())
    # StreamT (Faust's interface) lacks take_events; faust.Stream has it.
    delivery = pipeline.delivery
    topics = tuple(getattr(stream.channel, "topics", ()))
    delivery.waiting(topics, time.monotonic())
    batches = stream.take_events(  # type: ignore[attr-defined]
        batch_size, within=batch_seconds
    )
    async for events in batches:
        pending.set(len(events))
        delivery.taken(
            stream.app.consumer_generation_id,
            {event.message.tp: event.message.offset for event in events},
        )
        await handle_batch(pipeline, name, events, handle)
        if settle is not None:  # before take_events acknowledges the batch
            settle(events)
        pending.set(0)
        progress.set(time.time())
        delivery.waiting(topics, time.monotonic())


async def handle_batch(
    pipeline: Pipeline,
    name: str,
    events: Sequence[faust.EventT],
    handle: BatchHandler,
) -> None:
    """Handle ``events`` until done; bisect and dead-letter what keeps failing.

    The whole batch gets ``batch_max_attempts``; then, unless the failure is
    systemic (:func:`_systemic`), it is split in two and each half gets one
    attempt, down to single records, which get ``batch_max_attempts`` again
    before they become dead letters. A batch of 500 with one poison record
    costs about 2 x 9 extra attempts.
    """
    metrics = pipeline.metrics
    attempts = pipeline.settings.batch_max_attempts
    left = len(events)
    chunks: list[tuple[Sequence[faust.EventT], int]] = [(events, attempts)]
    top = True
    while chunks:
        chunk, tries = chunks.pop(0)
        error = await _attempt(pipeline, name, chunk, handle, tries)
        if error is not None and len(chunk) > 1 and top:
            if await _systemic(pipeline, name, chunk, handle, error):
                await _hold(pipeline, name, chunk, handle, error)
                error = None
        top = False
        if error is None:
            left -= len(chunk)
            metrics.stage_pending_records.labels(stage=name).set(left)
            metrics.stage_last_progress.labels(stage=name).set(time.time())
            continue
        if len(chunk) > 1:
            middle = len(chunk) // 2
            log.warning(
                "%s: a batch of %d keeps failing (%s); bisecting it",
                name,
                len(chunk),
                describe_error(error),
            )
            metrics.batch_bisections.labels(stage=name).inc()
            chunks[:0] = [
                (half, 1 if len(half) > 1 else attempts)
                for half in (chunk[:middle], chunk[middle:])
            ]
            continue
        await _dead_letter_failed(pipeline, name, chunk[0], error)
        left -= 1


#: Records handled alone to tell a systemic failure from a poison record.
SYSTEMIC_PROBES = 3


async def _systemic(
    pipeline: Pipeline,
    name: str,
    chunk: Sequence[faust.EventT],
    handle: BatchHandler,
    error: Exception,
) -> bool:
    """Return True if the failure hits every record, not one poison record.

    The first :data:`SYSTEMIC_PROBES` records are handled alone (once each);
    if every one fails with the same kind of error as the batch, the cause
    is not in the data (a bug, a broken dependency, bad credentials), and
    bisecting would turn the whole stream into dead letters. Only a batch
    larger than the probe is probed. Records a probe handles are done (and
    handling them again later is harmless: handlers are idempotent).
    """
    if len(chunk) <= SYSTEMIC_PROBES:
        return False
    for event in chunk[:SYSTEMIC_PROBES]:
        try:
            await handle(pipeline, [event])
        except Exception as exc:  # noqa: BLE001 - judged below
            if pipeline.shutdown.requested:
                abandon(name, len(chunk), exc)
            if type(exc) is not type(error):
                return False
        else:
            return False
    return True


async def _hold(
    pipeline: Pipeline,
    name: str,
    chunk: Sequence[faust.EventT],
    handle: BatchHandler,
    error: Exception,
) -> None:
    """Retry a batch that fails systemically until it succeeds, like an outage.

    Nothing is dead-lettered: the stage stalls, visibly
    (``MonitorStageStalled``), until the cause is fixed.
    """
    pipeline.metrics.batch_systemic_failures.labels(stage=name).inc()
    log.error(
        "%s: every record of a batch of %d fails alike (%s): not bad data but a "
        "fault of the code or a dependency; holding the batch until it is fixed",
        name,
        len(chunk),
        describe_error(error),
    )
    delay = backoff_delays(BATCH_RETRY_INITIAL_SECONDS, BATCH_RETRY_MAX_SECONDS)
    attempt = 0
    while True:
        await pipeline.shutdown.sleep(delay(attempt))
        attempt += 1
        try:
            await handle(pipeline, chunk)
            return
        except Exception as exc:  # noqa: BLE001 - held until it succeeds
            if pipeline.shutdown.requested:
                abandon(name, len(chunk), exc)
            pipeline.metrics.batch_retries.labels(stage=name).inc()
            log.error("%s: held batch still fails (%s)", name, describe_error(exc))


async def _attempt(
    pipeline: Pipeline,
    name: str,
    chunk: Sequence[faust.EventT],
    handle: BatchHandler,
    tries: int,
) -> Exception | None:
    """Handle ``chunk``; return the error once ``tries`` non-transient ones failed.

    Transient failures are retried for as long as they last and do not count.
    """
    shutdown = pipeline.shutdown
    delay = backoff_delays(BATCH_RETRY_INITIAL_SECONDS, BATCH_RETRY_MAX_SECONDS)
    failures = retries = 0
    while True:
        try:
            await handle(pipeline, chunk)
            return None
        except Exception as exc:  # noqa: BLE001 - the one boundary, see STYLE 4
            if shutdown.requested:
                abandon(name, len(chunk), exc)
            transient = is_transient(exc)
            if not transient:
                failures += 1
                if failures >= tries:
                    return exc
            wait = delay(retries)
            retries += 1
            pipeline.metrics.batch_retries.labels(stage=name).inc()
            log.log(
                logging.WARNING if transient else logging.ERROR,
                "%s: a batch of %d failed (%s, attempt %d); retrying in %.1f s",
                name,
                len(chunk),
                describe_error(exc),
                retries,
                wait,
                exc_info=None if transient else exc,
            )
            await shutdown.sleep(wait)


async def _dead_letter_failed(
    pipeline: Pipeline, name: str, event: faust.EventT, error: Exception
) -> None:
    """Dead-letter the record that fails on its own; retry the send until it goes.

    The dead letter is the last place a record can go, so a send that fails
    is retried (with backoff) rather than given up.
    """
    identity = _identity(event)
    reason = (
        f"failed {pipeline.settings.batch_max_attempts} times on its own in "
        f"{name}: {describe_error(error)}"
    )
    delay = backoff_delays(BATCH_RETRY_INITIAL_SECONDS, BATCH_RETRY_MAX_SECONDS)
    attempt = 0
    while True:
        try:
            await pipeline.dead_letter_event(name, event, reason, **identity)
            return
        except Exception as exc:  # noqa: BLE001 - retried until the broker takes it
            if pipeline.shutdown.requested:
                abandon(name, 1, exc)
            wait = delay(attempt)
            attempt += 1
            pipeline.metrics.batch_retries.labels(stage=name).inc()
            log.error(
                "%s: sending a dead letter failed (%s); retrying in %.1f s",
                name,
                describe_error(exc),
                wait,
            )
            await pipeline.shutdown.sleep(wait)


def abandon(name: str, records: int, error: BaseException) -> NoReturn:
    """Exit at once, leaving a failing batch unacknowledged (worker stopping).

    Faust acknowledges a batch whose handler raised, and commits on stop, so
    the only way to leave it for the restart is to exit before that: as after
    a kill -9, everything not committed is redelivered, and every stage is
    idempotent.
    """
    log.error(
        "%s: stopping with a batch of %d unfinished (%s); exiting without "
        "acknowledging it, it is redelivered on restart",
        name,
        records,
        describe_error(error),
    )
    exit_unacknowledged()


def exit_unacknowledged() -> NoReturn:
    """Exit now with :data:`EXIT_ABANDONED`; nothing more is acknowledged.

    Whatever is uncommitted is redelivered to the restarted worker (or the
    partitions' next owner), and every stage is idempotent.
    """
    logging.shutdown()
    os._exit(EXIT_ABANDONED)


def exit_for_restart(why: str) -> NoReturn:
    """Log why this worker cannot go on, then :func:`exit_unacknowledged`.

    For a worker that would otherwise stay up doing nothing (its consumer
    dead): the supervisor starts a new one, which reads again what was not
    committed.
    """
    log.critical(
        "%s; this worker exits (status %d) to be restarted, and what it did "
        "not commit is read again",
        why,
        EXIT_ABANDONED,
    )
    exit_unacknowledged()


def describe_error(exc: BaseException) -> str:
    """Return ``Type: message`` (the message cut to 500 characters) for a log line."""
    text = str(exc)
    return f"{type(exc).__name__}: {text[:500]}" if text else type(exc).__name__


def start_shutdown_clock(shutdown: Shutdown, seconds: float) -> None:
    """Begin stopping: wake retry loops, and exit anyway after ``seconds``.

    Called from the worker's SIGTERM/SIGINT handler. In-flight batches may
    drain meanwhile; a worker that has not stopped by then exits with
    :data:`EXIT_ABANDONED`, leaving whatever is unfinished unacknowledged.
    """
    if shutdown.requested:
        return
    shutdown.begin()

    def hard_exit() -> None:
        log.error(
            "still stopping after %.0f s (MONITOR_SHUTDOWN_SECONDS); exiting, "
            "unfinished batches are redelivered on restart",
            seconds,
        )
        exit_unacknowledged()

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()
