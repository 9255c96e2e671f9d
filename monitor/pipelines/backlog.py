"""Effects that trail a batch without holding the stream: a bounded backlog.

The hot path counts a batch and sends its window reports at once, but its
bulk write to Elasticsearch (and the copy on ``scored-posts``) may take
longer: on a slow or unavailable Elasticsearch it would hold the stream,
and with it the counts and the alerts of every later batch. So those
effects go to a :class:`Backlog`, written in order by one task, while the
agent goes on to the next batch. The backlog is bounded (records): when it
is full the agent waits, so an outage delays indexing first and alerts only
once the backlog has filled.

Nothing is acknowledged early. A record whose effects are in the backlog is
*held*: it gets one more reference, so its batch letting go of it does not
make it done; the backlog lets it go once its effects are written. The hot
path's consumer commits each partition up to its first record not done
(:class:`~monitor.stages.offsets.CommitTracker`), so after a crash
everything not yet written is read again, and every effect is idempotent
(documents by id, scored posts keyed by id). Before partitions move, and on
stop, the consumer waits for the backlog (:meth:`Backlog.join`) and commits;
a worker stopping while the backlog cannot be written exits without
committing it (see :func:`~monitor.pipelines.batches.abandon`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import faust

from monitor.pipelines.batches import BatchHandler, Pipeline, abandon, handle_batch

log = logging.getLogger(__name__)


def hold(events: Sequence[faust.EventT]) -> None:
    """Keep each event's record from being committed until :func:`release`."""
    for event in events:
        event.message.incref()


def release(events: Sequence[faust.EventT]) -> None:
    """Let go of records :func:`hold` kept: they may be committed once acked."""
    for event in events:
        event.ack()


class Backlog:
    """Trailing effects of handled batches, written in order, bounded in records.

    ``put`` holds a batch's records and queues ``handle`` for them; one task
    runs the queued handlers through :func:`handle_batch` (retries, outages
    waited out, bisection and dead letters as for any batch) and releases
    each batch's records when its handler is done. It holds at most
    ``limit`` records and ``limit_bytes`` bytes of their raw values (what
    stays in memory is a few times that: the decoded and scored forms). With
    ``limit`` 0 there is no backlog: ``put`` runs the handler itself.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        name: str,
        limit: int,
        limit_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        """Start empty; the writing task starts with the first ``put``."""
        self.pipeline = pipeline
        self.name = name
        self.limit = limit
        self.limit_bytes = limit_bytes
        self.records = 0
        self.bytes = 0
        #: (events, handler or None for a settle entry, records, bytes)
        self._queue: asyncio.Queue[
            tuple[Sequence[faust.EventT], BatchHandler | None, int, int]
        ] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        metrics = pipeline.metrics
        self._pending = metrics.stage_pending_records.labels(stage=name)
        self._progress = metrics.stage_last_progress.labels(stage=name)
        self._progress.set(time.time())

    async def put(self, events: Sequence[faust.EventT], handle: BatchHandler) -> None:
        """Queue ``handle(pipeline, events)``; wait while the backlog is full.

        A batch is always taken into an empty backlog, however large.

        Raises:
            RuntimeError: The writing task died (a bug): the agent stops
                rather than hold records forever.

        """
        if not events:
            return
        if self.limit <= 0:
            await handle_batch(self.pipeline, self.name, events, handle)
            self._progress.set(time.time())
            return
        size = sum(len(event.value or b"") for event in events)
        while self.records and (
            self.records + len(events) > self.limit
            or self.bytes + size > self.limit_bytes
        ):
            self._check()
            self._changed.clear()
            await self._changed.wait()
        self._check()
        hold(events)
        self.records += len(events)
        self.bytes += size
        self._pending.set(self.records)
        self._queue.put_nowait((events, handle, len(events), size))
        self._start()

    def settle(self, events: Sequence[faust.EventT]) -> None:
        """Hold a handled batch's records until everything queued before is written.

        Called once per batch, after its handler, before the stream acknowledges
        it. A record the batch queued nothing for (a dead letter) would
        otherwise be let go ahead of earlier records still held. The hot
        path's commit stops at the first record held whatever comes after
        it, but Faust's consumer (``Consumer._new_offset``, for a batch
        agent on Faust) commits past a gap one offset wide, and past any gap
        while it knows no committed offset: released in queue order, every
        record of a partition is let go in offset order under either.
        """
        if self.limit <= 0 or not events:
            return
        hold(events)
        self._queue.put_nowait((events, None, 0, 0))
        self._start()

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._write(), name=f"{self.name}-backlog"
            )
            # a writer that dies wakes whoever waits for room, to raise
            self._task.add_done_callback(lambda _: self._changed.set())

    async def join(self) -> None:
        """Wait until everything queued so far is written and released."""
        while self.records:
            self._check()
            self._changed.clear()
            await self._changed.wait()
        self._check()

    async def close(self) -> None:
        """Stop the writing task; what it held stays unacknowledged (redelivered)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _check(self) -> None:
        task = self._task
        if task is not None and task.done():
            error = None if task.cancelled() else task.exception()
            raise RuntimeError(
                f"{self.name}: the backlog's writer stopped ({error!r}); "
                "its records stay unacknowledged"
            )

    async def _write(self) -> None:
        try:
            while True:
                events, handle, records, size = await self._queue.get()
                if handle is not None:
                    await handle_batch(self.pipeline, self.name, events, handle)
                release(events)
                if records:
                    self.records -= records
                    self.bytes -= size
                    self._pending.set(self.records)
                    self._progress.set(time.time())
                    self._changed.set()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug: held records would stall commits forever
            abandon(self.name, self.records, exc)
