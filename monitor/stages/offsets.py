"""Which offsets a consumer may commit: the first record of each partition not done.

The hot path reads ``posts`` with its own Kafka consumer (see
:mod:`monitor.pipelines.consumer`) and commits by hand. A record is handed
out with one reference; whoever keeps its effects pending (the index
backlog) takes another (:meth:`InFlight.incref`), and each :meth:`InFlight.ack`
lets one go. A partition's committable offset is the offset after its
longest run of records, from the oldest handed out, whose references are all
gone: a record still held stops the run, whatever was acknowledged after it,
so a crash never loses a record that was not done (everything after the
committed offset is read again, and every effect is idempotent).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

#: A topic partition: aiokafka's ``TopicPartition`` and Faust's ``TP`` are
#: both named ``(topic, partition)`` tuples.
Partition = TypeVar("Partition", bound=tuple[str, int])


class InFlight:
    """One consumed record as the stages see it: its value and where it came from.

    Shaped like a Faust event and its message at once (``.value``,
    ``.message.topic``/``partition``/``offset``/``timestamp``/``tp``,
    ``.ack()``), so the batch handlers take either.
    """

    __slots__ = (
        "topic",
        "partition",
        "offset",
        "timestamp",
        "key",
        "value",
        "tp",
        "refs",
    )

    def __init__(
        self,
        tp: tuple[str, int],
        offset: int,
        value: bytes | None,
        *,
        key: bytes | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Hand out a record with one reference (its batch's)."""
        self.tp = tp
        self.topic, self.partition = tp
        self.offset = offset
        self.value = value
        self.key = key
        #: seconds since the epoch the broker gave the record, if any
        self.timestamp = timestamp
        self.refs = 1

    @property
    def message(self) -> InFlight:
        """The record itself (a Faust event keeps its message apart)."""
        return self

    def incref(self) -> None:
        """Hold the record: it is not done until one more :meth:`ack`."""
        self.refs += 1

    def ack(self) -> bool:
        """Let one reference go; return True if that made the record done."""
        if self.refs <= 0:
            return False
        self.refs -= 1
        return self.refs == 0

    @property
    def done(self) -> bool:
        """True once every reference is let go."""
        return self.refs <= 0

    def __repr__(self) -> str:
        return (
            f"InFlight({self.topic}[{self.partition}]@{self.offset}, refs={self.refs})"
        )


class CommitTracker(Generic[Partition]):
    """Records handed out per partition, in offset order, until committable."""

    def __init__(self) -> None:
        """Track nothing yet."""
        self._pending: dict[Partition, deque[InFlight]] = {}
        #: partition -> the offset last returned by :meth:`committable`
        self._committed: dict[Partition, int] = {}

    def handed(self, records: Iterable[InFlight]) -> None:
        """Note records handed out, each partition's in increasing offset order.

        A record at or before one already handed out on its partition (the
        consumer went back: a seek, a reset after an out-of-range offset)
        replaces it and every later one: they are handed out again, and the
        commit waits for the new copies. Copies still held elsewhere are
        simply no longer tracked; their effects are idempotent.
        """
        for record in records:
            tp: Partition = record.tp  # type: ignore[assignment]
            queue = self._pending.get(tp)
            if queue is None:
                queue = self._pending[tp] = deque()
            while queue and queue[-1].offset >= record.offset:
                queue.pop()
            queue.append(record)

    def committable(self) -> dict[Partition, int]:
        """Return the partitions whose commit can move, with their new offsets.

        An offset is returned once: a later call returns a partition again
        only when more of its records are done.
        """
        moved: dict[Partition, int] = {}
        for tp, queue in self._pending.items():
            last = None
            while queue and queue[0].refs <= 0:
                last = queue.popleft().offset
            # never backwards: records read again below a commit
            if last is not None and last + 1 > self._committed.get(tp, -1):
                moved[tp] = self._committed[tp] = last + 1
        return moved

    def held(self, tp: Partition) -> int:
        """Return how many records of ``tp`` are handed out and not committable."""
        queue = self._pending.get(tp)
        return len(queue) if queue else 0

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop partitions this consumer no longer reads from (or reads again)."""
        for tp in partitions:
            self._pending.pop(tp, None)
            self._committed.pop(tp, None)
