"""Records the consumer took from Kafka but never handed to an agent.

Faust hands an agent the records its consumer fetched. Around a rebalance it
throws away what it fetched before the partitions moved and seeks each
partition back to its committed offset. One interleaving was seen to escape
that: a rebalance that retried at once (a commit refused with
IllegalGeneration while the revoke waited for the index backlog) left a
partition's fetch position at the end of the log while nothing after the
committed offset had been handed out. The records in between are never
delivered, and since nothing after them is acknowledged, their offset is
never committed either: the stage waits on them silently for good.

:class:`DeliveryWatch` notices it from outside Faust. The agent reports the
last offset it took per partition and when it waits for its next batch; a
timer reports the consumer's positions. A partition whose position stays
ahead of what its agent was handed, while that agent sits idle for
``stall_seconds``, is reported once per offset, and the caller seeks it
back there: the records are read again, and every effect is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

#: A topic partition: Faust's ``TP`` is a named ``(topic, partition)`` tuple.
Partition = TypeVar("Partition", bound=tuple[str, int])

#: How long an agent must sit idle behind a consumer position before the
#: records in between count as lost (seconds). Well above a batch's wait
#: (``score_batch_seconds``) and a rebalance's seek-and-resume.
DELIVERY_STALL_SECONDS = 30.0


@dataclass(frozen=True)
class _Suspect:
    position: int
    expected: int
    since: float


class DeliveryWatch(Generic[Partition]):
    """Which partitions' consumer positions ran ahead of what their agents got.

    Offsets here are Kafka's: a position is the next offset the consumer
    returns, a committed offset the next one to read after a restart.
    """

    def __init__(self, stall_seconds: float = DELIVERY_STALL_SECONDS) -> None:
        """Watch nothing yet; agents register with :meth:`waiting`."""
        if stall_seconds <= 0:
            raise ValueError(f"stall_seconds must be > 0, got {stall_seconds}")
        self.stall_seconds = stall_seconds
        #: topic -> when its agent began waiting for a batch (None: handling one)
        self._waiting: dict[str, float | None] = {}
        #: partition -> (consumer generation, last offset its agent took)
        self._taken: dict[Partition, tuple[int, int]] = {}
        self._suspects: dict[Partition, _Suspect] = {}
        #: partition -> the offset it was last sought back to
        self._rewound: dict[Partition, int] = {}

    def waiting(self, topics: Iterable[str], now: float) -> None:
        """Note that the agent of ``topics`` handled its batch and waits for more."""
        for topic in topics:
            self._waiting[topic] = now

    def busy(self, topics: Iterable[str]) -> None:
        """Note that the agent of ``topics`` took a batch and is handling it."""
        for topic in topics:
            self._waiting[topic] = None

    def is_waiting(self, topic: str) -> bool:
        """Return True while the agent of ``topic`` waits for records.

        False while it handles a batch (or waits for room to queue one), and
        for a topic whose agent has not started.
        """
        return self._waiting.get(topic) is not None

    def taken(
        self, generation: int, last_offsets: Mapping[Partition, int]
    ) -> None:
        """Note a batch the agent took: the last offset of each of its partitions.

        Marks the agents of those partitions' topics busy until they call
        :meth:`waiting` again.
        """
        for partition, offset in last_offsets.items():
            self._taken[partition] = (generation, offset)
            self._waiting[partition[0]] = None

    def check(
        self,
        generation: int,
        positions: Mapping[Partition, int | None],
        committed: Mapping[Partition, int | None],
        now: float,
    ) -> dict[Partition, int]:
        """Partitions to seek back, with the offset to seek each to.

        Args:
            generation: The consumer group generation now.
            positions: Each assigned partition's consumer position (None:
                not known yet).
            committed: Each partition's committed offset as the consumer
                last knew it (None: none), used for a partition whose agent
                took nothing in this generation.
            now: The caller's monotonic clock, as given to :meth:`waiting`.

        Returns:
            Partition -> the offset after the last one its agent took in this
            generation (else the committed offset), for each partition whose
            position has stayed past that offset, unchanged, for
            ``stall_seconds``, its agent waiting for a batch all that time. Each
            (partition, offset) is returned once: a position that stays
            ahead after the seek (a transaction marker, a compacted gap)
            is not sought again.

        """
        suspects: dict[Partition, _Suspect] = {}
        stalled: dict[Partition, int] = {}
        for partition, position in positions.items():
            topic = partition[0]
            if topic not in self._waiting or position is None:
                continue
            taken = self._taken.get(partition)
            if taken is not None and taken[0] == generation:
                expected: int | None = taken[1] + 1
            else:
                expected = committed.get(partition)
            if expected is None or position <= expected:
                continue
            if self._rewound.get(partition) == expected:
                continue
            earlier = self._suspects.get(partition)
            if earlier is None or (earlier.position, earlier.expected) != (
                position,
                expected,
            ):
                earlier = _Suspect(position, expected, now)
            suspects[partition] = earlier
            idle_since = self._waiting[topic]
            if (
                idle_since is not None
                and now - max(idle_since, earlier.since) >= self.stall_seconds
            ):
                stalled[partition] = expected
        for partition, offset in stalled.items():
            self._rewound[partition] = offset
            del suspects[partition]
        self._suspects = suspects
        return stalled
