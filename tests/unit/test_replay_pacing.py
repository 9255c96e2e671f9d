"""Pacing a replay by the posts' timestamps: speed, gaps, disorder, bounds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from monitor.cli.replay import _speed, replay
from monitor.sources.pacing import Pacer

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def schedule(offsets: list[float], speed: float, max_gap: float = 60.0) -> list[float]:
    """Due times (from 0) of posts at these event offsets, sent when due."""
    pacer = Pacer(speed, max_gap)
    now, dues = 100.0, []
    for offset in offsets:
        due = pacer.due(T0 + timedelta(seconds=offset), now)
        now = max(now, due)  # the replay sleeps until it is due
        dues.append(due - 100.0)
    return dues


def test_gaps_are_divided_by_the_speed() -> None:
    assert schedule([0, 10, 30, 30, 31], speed=10) == pytest.approx(
        [0, 1, 3, 3, 3.1]
    )
    assert schedule([0, 10, 30], speed=1) == pytest.approx([0, 10, 30])


def test_a_long_gap_is_cut_to_max_gap_and_later_gaps_keep_their_length() -> None:
    assert schedule([0, 1, 86_400, 86_402], speed=1, max_gap=5) == pytest.approx(
        [0, 1, 6, 8]
    )


def test_an_older_post_is_sent_at_once_never_waiting_backwards() -> None:
    dues = schedule([0, 20, 5, 25], speed=1)
    assert dues == pytest.approx([0, 20, 20, 25])


def test_slow_sends_do_not_add_drift() -> None:
    pacer = Pacer(speed=1)
    assert pacer.due(T0, 0.0) == 0.0
    # The send of the first post took 3 s: the second is still due at 10.
    assert pacer.delay(T0 + timedelta(seconds=10), 3.0) == pytest.approx(7.0)
    assert pacer.delay(T0 + timedelta(seconds=11), 12.5) == 0.0


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=50),
    st.floats(0.01, 1000),
    st.floats(0.1, 120),
)
def test_due_times_never_go_back_and_never_wait_more_than_max_gap(
    offsets: list[float], speed: float, max_gap: float
) -> None:
    dues = schedule(offsets, speed, max_gap)
    steps = [b - a for a, b in zip(dues, dues[1:], strict=False)]
    assert all(-1e-9 <= step <= max_gap + 1e-9 for step in steps)


def test_place_keeps_the_order_of_late_posts() -> None:
    pacer = Pacer(speed=2)
    places = []
    for offset in (0, 10, 4, 12):
        pacer.due(T0 + timedelta(seconds=offset), 0.0)
        places.append(pacer.place(T0 + timedelta(seconds=offset)))
    assert places == pytest.approx([0, 5, 2, 6])


def test_bad_speeds_are_refused() -> None:
    with pytest.raises(ValueError):
        Pacer(0)
    with pytest.raises(ValueError):
        Pacer(1, max_gap=0)
    assert _speed("max") is None and _speed(None) is None and _speed("2.5") == 2.5
    result = CliRunner().invoke(replay, ["--speed", "fast", __file__])
    assert result.exit_code == 2 and "neither a number nor 'max'" in result.output
    result = CliRunner().invoke(replay, ["--speed", "-1", __file__])
    assert result.exit_code == 2 and "must be > 0" in result.output
