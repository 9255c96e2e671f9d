"""IntIndex answers exactly what a dict of the keys answers, in both of its paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.sentiment import intindex
from monitor.analysis.sentiment.intindex import IntIndex

int64s = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def expected(keys: np.ndarray, queries: np.ndarray) -> list[tuple[int, int]]:
    where = {int(k): i for i, k in enumerate(keys)}
    return [(q, where[int(v)]) for q, v in enumerate(queries) if int(v) in where]


def answer(index: IntIndex, queries: np.ndarray) -> list[tuple[int, int]]:
    found, pos = index.find(queries)
    return sorted(zip(found.tolist(), pos.tolist(), strict=True))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(int64s, max_size=300, unique=True),
    st.lists(int64s, max_size=50),
    st.integers(min_value=0, max_value=2),
)
def test_find_equals_a_dict(keys: list[int], others: list[int], repeat: int) -> None:
    key_array = np.array(sorted(keys), dtype=np.int64)
    # Queries mix keys (some repeated) and other values; more than
    # SMALL_BATCH of them go through the probing path.
    queries = np.array(keys * repeat + others, dtype=np.int64)
    rng = np.random.default_rng(len(keys))
    rng.shuffle(queries)
    index = IntIndex(key_array)
    assert answer(index, queries) == expected(key_array, queries)
    wide = np.tile(queries, intindex.SMALL_BATCH // max(len(queries), 1) + 1)
    assert answer(index, wide) == expected(key_array, wide)


def test_fingerprint_collisions_are_not_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every fingerprint equal, only the exact key check tells keys apart."""
    original = IntIndex._hash

    def one_print(self: IntIndex, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        home, prints = original(self, keys)
        return home, np.ones_like(prints)

    monkeypatch.setattr(IntIndex, "_hash", one_print)
    keys = np.arange(0, 4000, 2, dtype=np.int64)
    queries = np.arange(-10, 4010, dtype=np.int64)
    index = IntIndex(keys)
    assert answer(index, queries) == expected(keys, queries)


def test_large_index_is_at_most_a_quarter_full() -> None:
    keys = np.arange(100_000, dtype=np.int64) * 7919
    index = IntIndex(keys)
    assert np.count_nonzero(index._rows) == len(keys)
    assert len(index._rows) >= 4 * len(keys)
    queries = np.concatenate([keys[::3], keys[::5] + 1])
    assert answer(index, queries) == expected(keys, queries)


def test_empty_index_and_empty_queries() -> None:
    empty = IntIndex(np.zeros(0, np.int64))
    assert answer(empty, np.arange(1000, dtype=np.int64)) == []
    full = IntIndex(np.arange(10, dtype=np.int64))
    assert answer(full, np.zeros(0, np.int64)) == []
