"""A read-only hash index from int64 keys to their positions, for numpy batches.

Both the fast segmenter's tag tables and a trained model's n-gram weights
look up hundreds of thousands of keys per batch, most of them absent. A
binary search of a large sorted array costs a cache miss at every level; the
table here costs about one memory access per query:

- open addressing with linear probing, at most a quarter full, so a key
  that is absent (most n-grams of a new text) ends its probe at once;
- one 8-byte row per slot packing a 32-bit fingerprint of the key with its
  position, so a probe reads one row; only a fingerprint match reads the key
  itself, which makes every answer exact.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

#: At most this share of the slots is used (see the module docstring).
MAX_LOAD = 0.25
#: Fewer queries than this are answered by a binary search of the keys: the
#: probing loop's fixed cost per numpy call is larger than its savings.
SMALL_BATCH = 256

_HOME_MIX = np.uint64(0x9E3779B97F4A7C15)
_PRINT_MIX = np.uint64(0xC2B2AE3D27D4EB4F)
_LOW32 = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)


class IntIndex:
    """Positions of sorted, distinct int64 keys, found a batch at a time.

    Args:
        keys: Sorted, distinct keys (kept, not copied); fewer than 2**32.

    Raises:
        ValueError: If there are 2**32 keys or more.

    """

    def __init__(self, keys: IntArray) -> None:
        """Build the table (vectorized: a few numpy passes per probe length)."""
        if len(keys) >= 1 << 32:
            raise ValueError(f"too many keys for an IntIndex: {len(keys)}")
        self.keys = keys
        bits = max(4, int(max(len(keys), 1) / MAX_LOAD - 1).bit_length())
        self._shift = np.uint64(64 - bits)
        self._mask = np.int64((1 << bits) - 1)
        self._rows = np.zeros(1 << bits, dtype=np.uint64)
        pending = np.arange(len(keys), dtype=np.int64)
        home, prints = self._hash(keys)
        rows = (prints << _32) | pending.astype(np.uint64)
        while len(pending):
            free = self._rows[home] == 0
            claim, first = np.unique(home[free], return_index=True)
            self._rows[claim] = rows[free][first]
            placed = np.zeros(len(pending), dtype=bool)
            placed[np.flatnonzero(free)[first]] = True
            pending, rows = pending[~placed], rows[~placed]
            home = (home[~placed] + 1) & self._mask

    def _hash(self, keys: IntArray) -> tuple[IntArray, npt.NDArray[np.uint64]]:
        """Home slot and fingerprint (never 0: 0 marks a free row) per key."""
        unsigned = keys.astype(np.uint64)
        home = ((unsigned * _HOME_MIX) >> self._shift).astype(np.int64)
        prints = ((unsigned * _PRINT_MIX) >> _32) | np.uint64(1)
        return home, prints

    def find(self, queries: IntArray) -> tuple[IntArray, IntArray]:
        """Look up many keys.

        Returns:
            (indices of the queries that are keys, their positions in keys),
            ordered by index within each probe length, not overall.

        """
        keys = self.keys
        if not len(keys) or not len(queries):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if len(queries) < SMALL_BATCH:
            pos = np.searchsorted(keys, queries)
            np.minimum(pos, len(keys) - 1, out=pos)
            found = np.flatnonzero(keys[pos] == queries)
            return found, pos[found]
        found_q: list[IntArray] = []
        found_k: list[IntArray] = []
        active = np.arange(len(queries), dtype=np.int64)
        home, prints = self._hash(queries)
        while len(active):
            rows = self._rows[home]
            match = np.flatnonzero((rows >> _32) == prints)
            if len(match):
                pos = (rows[match] & _LOW32).astype(np.int64)
                exact = keys[pos] == queries[active[match]]
                found_q.append(active[match[exact]])
                found_k.append(pos[exact])
            # A fingerprint match that is not the key probes on, as a miss does.
            more = rows != 0
            if len(match):
                more[match[exact]] = False
            active, prints = active[more], prints[more]
            home = (home[more] + 1) & self._mask
        if not found_q:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(found_q), np.concatenate(found_k)
