"""Post ids remembered for a horizon of event time, so that one id counts once.

``scored-posts`` is keyed by post id, so every copy of a post (a redelivery,
a producer's retry, the same post fetched again with another
``published_at``) reaches the same partition. :class:`DedupMemory` holds the
64-bit hashes of the ids one partition has seen in the last
``horizon_seconds`` of event time; a copy whose hash it holds is a duplicate.

**Layout.** One ``set`` of every hash held (the lookup: one per post) and,
for expiry, the hashes grouped in *buckets* by the event time of the first
copy (an hour, rounded up to whole windows, so a window lies in one bucket).
Each bucket is a list of *chunks* (``array('Q')`` of at most ``chunk_ids``
hashes), and a chunk is one state-log entry: its hashes as base64 of
big-endian uint64s (2,048 hashes are 16 KiB, 22 KiB encoded, far below
Kafka's message limits). A batch rewrites only the chunks it added to.

**Forgetting.** A bucket goes once it ended before the partition's watermark
minus the horizon. If more than ``max_ids`` hashes are held, the oldest
chunks go early (and are counted, so an operator can see that the horizon
is shorter than configured).

**Memory.** About 80 bytes per id held (measured with CPython 3.11: 78 bytes
at 2,000,000 ids: the set's int objects and slots, plus 8 bytes in a chunk),
so the default cap of 2,000,000 ids costs about 160 MB per partition.

**Crash safety.** Each chunk entry carries the offset of the batch that
wrote it and how many of its hashes were there before that batch
(``kept``). Restoring with the offset actually applied drops the hashes of a
batch whose other writes did not land, so a batch handled again does not
take its own posts for duplicates.
"""

from __future__ import annotations

import base64
import math
import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Ids are grouped by this much event time of their first copy (at least),
#: the unit in which they are forgotten.
BUCKET_SECONDS = 3600
#: Most hashes in one chunk (one state-log entry); smaller when the cap is
#: small, so that forgetting early never takes more than 1/16 of the cap.
CHUNK_IDS = 2048

if array("Q").itemsize != 8:  # pragma: no cover - every platform we run on
    raise ImportError("array('Q') must hold 64-bit integers")

#: (bucket start in epoch seconds, chunk index within the bucket)
ChunkPosition = tuple[int, int]


def bucket_seconds_for(window_seconds: int) -> int:
    """Return the bucket length for a window length: whole windows, >= an hour."""
    return window_seconds * max(1, math.ceil(BUCKET_SECONDS / window_seconds))


def pack_ids(ids: Iterable[int]) -> str:
    """Encode 64-bit hashes as base64 of big-endian uint64s."""
    data = array("Q", ids)
    if sys.byteorder == "little":
        data.byteswap()
    return base64.b64encode(data.tobytes()).decode("ascii")


def unpack_ids(text: str) -> array[int]:
    """Inverse of :func:`pack_ids`."""
    data = array("Q")
    data.frombytes(base64.b64decode(text))
    if sys.byteorder == "little":
        data.byteswap()
    return data


@dataclass
class _Bucket:
    #: index of the oldest chunk still held (older ones were forgotten early)
    first: int
    chunks: list[array[int]]


class DedupMemory:
    """Hashes of the post ids one partition saw within a horizon of event time.

    Args:
        horizon_seconds: Event time an id is remembered for (0: off, nothing
            is remembered).
        max_ids: Most ids held; past it the oldest are forgotten early.
        bucket_seconds: Event time per bucket (see :func:`bucket_seconds_for`).

    """

    def __init__(
        self,
        horizon_seconds: int,
        max_ids: int,
        bucket_seconds: int = BUCKET_SECONDS,
    ) -> None:
        """Start empty."""
        if horizon_seconds < 0 or max_ids < 1 or bucket_seconds <= 0:
            raise ValueError(
                "dedup horizon must be >= 0, max ids >= 1 and bucket length > 0"
            )
        self.horizon_seconds = horizon_seconds
        self.max_ids = max_ids
        self.bucket_seconds = bucket_seconds
        self.chunk_ids = max(1, min(CHUNK_IDS, max_ids // 16))
        #: every hash held: the one lookup per post
        self.ids: set[int] = set()
        #: bucket start -> its chunks, for expiry and the state log
        self.buckets: dict[int, _Bucket] = {}
        #: a bucket that ended at or before this event time is forgotten
        self.cutoff = -math.inf
        #: chunks changed since the last :meth:`writes` -> hashes they held before
        self._dirty: dict[ChunkPosition, int] = {}
        #: chunks dropped since the last :meth:`writes`
        self._deleted: set[ChunkPosition] = set()

    @property
    def enabled(self) -> bool:
        """True if ids are remembered (a horizon is set)."""
        return self.horizon_seconds > 0

    def __contains__(self, digest: int) -> bool:
        """Return True if the hash is held."""
        return digest in self.ids

    def __len__(self) -> int:
        """Return the number of hashes held."""
        return len(self.ids)

    def remember(self, digest: int, published: float) -> None:
        """Hold a hash not held yet, in the bucket of its event time (epoch s).

        A post whose bucket is already past the horizon is not remembered.
        """
        size = self.bucket_seconds
        start = int(published // size) * size
        if start + size <= self.cutoff:
            return
        bucket = self.buckets.get(start)
        if bucket is None:
            bucket = self.buckets[start] = _Bucket(0, [array("Q")])
        chunk = bucket.chunks[-1]
        if len(chunk) >= self.chunk_ids:
            chunk = array("Q")
            bucket.chunks.append(chunk)
        position = (start, bucket.first + len(bucket.chunks) - 1)
        if position not in self._dirty:
            self._dirty[position] = len(chunk)
        chunk.append(digest)
        self.ids.add(digest)

    def expire(self, watermark: float) -> int:
        """Forget buckets past the horizon, then the oldest ids over the cap.

        Args:
            watermark: The partition's watermark (event time, epoch seconds).

        Returns:
            Hashes forgotten early, because more than ``max_ids`` were held.

        """
        self.cutoff = max(self.cutoff, watermark - self.horizon_seconds)
        size = self.bucket_seconds
        for start in [s for s in self.buckets if s + size <= self.cutoff]:
            bucket = self.buckets.pop(start)
            for offset, chunk in enumerate(bucket.chunks):
                self._forget((start, bucket.first + offset), chunk)
        early = 0
        while len(self.ids) > self.max_ids and self.buckets:
            start = min(self.buckets)
            bucket = self.buckets[start]
            chunk = bucket.chunks.pop(0)
            self._forget((start, bucket.first), chunk)
            bucket.first += 1
            early += len(chunk)
            if not bucket.chunks:
                del self.buckets[start]
        return early

    def _forget(self, position: ChunkPosition, chunk: array[int]) -> None:
        self.ids.difference_update(chunk)
        self._dirty.pop(position, None)
        self._deleted.add(position)

    def _chunk(self, position: ChunkPosition) -> array[int] | None:
        start, index = position
        bucket = self.buckets.get(start)
        if bucket is None or not 0 <= index - bucket.first < len(bucket.chunks):
            return None
        return bucket.chunks[index - bucket.first]

    def writes(
        self, offset: int
    ) -> tuple[dict[ChunkPosition, dict[str, Any]], list[ChunkPosition]]:
        """Return the state-log changes since the last call, and start afresh.

        Args:
            offset: The partition's offset applied once this batch's writes
                have landed (stored with each chunk written).

        Returns:
            The chunks to write (position -> JSON-able value) and the
            positions whose entries to delete.

        """
        values = {}
        for position, kept in self._dirty.items():
            chunk = self._chunk(position)
            if chunk is not None:
                values[position] = {
                    "offset": offset,
                    "kept": kept,
                    "ids": pack_ids(chunk),
                }
        deleted = sorted(p for p in self._deleted if p not in values)
        self._dirty.clear()
        self._deleted.clear()
        return values, deleted

    def layout(self) -> dict[int, tuple[int, list[list[int]]]]:
        """Return bucket start -> (first chunk index, chunks' hashes): for tests."""
        return {
            start: (bucket.first, [list(chunk) for chunk in bucket.chunks])
            for start, bucket in sorted(self.buckets.items())
        }

    @classmethod
    def restore(
        cls,
        horizon_seconds: int,
        max_ids: int,
        bucket_seconds: int,
        chunks: Iterable[tuple[ChunkPosition, Mapping[str, Any]]],
        *,
        applied_offset: int,
        watermark: float | None,
    ) -> DedupMemory:
        """Rebuild from the chunk entries of the state log (any order).

        Args:
            horizon_seconds: As for the constructor.
            max_ids: As for the constructor.
            bucket_seconds: As for the constructor.
            chunks: ``(position, value)`` of every chunk entry.
            applied_offset: The offset the partition's state was restored to:
                hashes a later batch added are dropped (that batch's other
                writes did not land; it will be handled again).
            watermark: The restored watermark, None if none.

        With the horizon off, every chunk is dropped (deleted by the next
        :meth:`writes`). Entries not ending like the memory that wrote them
        are rewritten by the next :meth:`writes`.

        """
        memory = cls(horizon_seconds, max_ids, bucket_seconds)
        if watermark is not None:
            memory.cutoff = watermark - horizon_seconds
        found: dict[int, dict[int, array[int]]] = {}
        for position, value in chunks:
            if not memory.enabled:
                memory._deleted.add(position)
                continue
            ids = unpack_ids(value["ids"])
            if int(value["offset"]) > applied_offset:
                kept = int(value["kept"])
                if kept < len(ids):
                    del ids[kept:]
                    memory._dirty[position] = kept
            found.setdefault(position[0], {})[position[1]] = ids
        for start, by_index in found.items():
            first, last = min(by_index), max(by_index)
            while last >= first and not by_index.get(last):
                # Trailing chunks only the batch that did not land wrote.
                if last in by_index:
                    memory._dirty.pop((start, last), None)
                    memory._deleted.add((start, last))
                last -= 1
            if last < first:
                continue
            held = [by_index.get(index, array("Q")) for index in range(first, last + 1)]
            memory.buckets[start] = _Bucket(first, held)
            for chunk in held:
                memory.ids.update(chunk)
        return memory
