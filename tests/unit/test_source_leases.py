"""Laying sources on lease slots: every source in one slot, all workers agree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.sources.leases import owned, slot_of

NAMES = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12),
    min_size=1,
    max_size=40,
    unique=True,
)


@given(NAMES, st.integers(1, 32))
def test_every_source_is_in_exactly_one_slot(names: list[str], slots: int) -> None:
    every = [owned(names, {slot}, slots) for slot in range(slots)]
    flat = [name for part in every for name in part]
    assert sorted(flat) == sorted(names)
    assert len(flat) == len(set(flat))


@given(NAMES, st.integers(1, 32), st.randoms())
def test_the_layout_does_not_depend_on_the_file_order(
    names: list[str], slots: int, random: object
) -> None:
    shuffled = list(names)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert [slot_of(n, names, slots) for n in names] == [
        slot_of(n, shuffled, slots) for n in names
    ]


@given(NAMES, st.integers(1, 32))
def test_sources_spread_over_the_slots_before_sharing_one(
    names: list[str], slots: int
) -> None:
    used = {slot_of(n, names, slots) for n in names}
    assert len(used) == min(len(names), slots)


def test_unknown_sources_and_no_slots_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        slot_of("x", ["a"], 4)
    with pytest.raises(ValueError, match="slots"):
        slot_of("a", ["a"], 0)
