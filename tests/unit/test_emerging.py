from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from monitor.analysis.emerging import EmergingTermConfig, EmergingTermDetector
from monitor.errors import ConfigError, InvalidRecordError

T0 = datetime(2024, 3, 4, tzinfo=timezone.utc)  # a Monday, 00:00 UTC
STEP = timedelta(minutes=5)
PER_DAY = 288


def _background(rng: np.random.Generator, total: int) -> dict[str, float]:
    words = [f"w{i}" for i in range(40)]
    shares = np.linspace(1, 3, len(words))
    counts = rng.multinomial(total, shares / shares.sum())
    return {w: float(c) for w, c in zip(words, counts, strict=True) if c}


def _feed(
    detector: EmergingTermDetector, windows: int, seed: int, total: int = 1000
) -> None:
    rng = np.random.default_rng(seed)
    for i in range(windows):
        detector.update(T0 + i * STEP, _background(rng, total), float(total))


def test_new_term_that_suddenly_takes_a_share_is_flagged() -> None:
    detector = EmergingTermDetector()
    _feed(detector, PER_DAY, seed=1)
    rng = np.random.default_rng(2)
    counts = _background(rng, 1000)
    counts["塌方"] = 30.0
    flagged = detector.update(T0 + PER_DAY * STEP, counts, 1030.0)
    assert [term.term for term in flagged] == ["塌方"]
    assert flagged[0].history_count == 0
    assert flagged[0].observed_count == 30.0


def test_established_terms_growing_with_volume_are_not_flagged() -> None:
    detector = EmergingTermDetector()
    _feed(detector, PER_DAY, seed=3)
    rng = np.random.default_rng(4)
    flagged = detector.update(T0 + PER_DAY * STEP, _background(rng, 5000), 5000.0)
    assert flagged == []


@pytest.mark.parametrize("count", [1.0, 4.0])
def test_new_term_below_min_count_is_not_flagged(count: float) -> None:
    detector = EmergingTermDetector()
    _feed(detector, 20, seed=5)
    flagged = detector.update(T0 + 20 * STEP, {"rare": count}, 1000.0)
    assert flagged == []


def test_flagged_term_is_not_reflagged_within_cooldown() -> None:
    detector = EmergingTermDetector()
    _feed(detector, 50, seed=6)
    first = detector.update(T0 + 50 * STEP, {"new": 40.0}, 1000.0)
    second = detector.update(T0 + 51 * STEP, {"new": 200.0}, 1000.0)
    assert [t.term for t in first] == ["new"]
    assert second == []


def test_term_table_stays_bounded_and_keeps_active_terms() -> None:
    detector = EmergingTermDetector(EmergingTermConfig(max_terms=100))
    for i in range(60):
        counts = {f"once{i}_{k}": 1.0 for k in range(10)}
        counts["steady"] = 50.0
        detector.update(T0 + i * STEP, counts, 1000.0)
        assert len(detector) <= 100
    assert "steady" in detector.snapshot()["terms"]


def test_term_snapshot_round_trips_through_json() -> None:
    detector = EmergingTermDetector()
    _feed(detector, 30, seed=7)
    copy = EmergingTermDetector.restore(json.loads(json.dumps(detector.snapshot())))
    window = T0 + 30 * STEP
    assert copy.update(window, {"new": 40.0, "w1": 20.0}, 1000.0) == detector.update(
        window, {"new": 40.0, "w1": 20.0}, 1000.0
    )


@pytest.mark.parametrize(
    ("counts", "total"),
    [({"a": -1.0}, 10.0), ({"a": 11.0}, 10.0), ({"a": math.nan}, 10.0), ({}, -1.0)],
)
def test_bad_term_counts_are_rejected(counts: dict[str, float], total: float) -> None:
    with pytest.raises(InvalidRecordError):
        EmergingTermDetector().update(T0, counts, total)


@pytest.mark.parametrize(
    "kwargs", [{"max_terms": 0}, {"prior_share": 0.0}, {"min_ratio": 0.5}]
)
def test_invalid_term_config_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        EmergingTermConfig(**kwargs)  # type: ignore[arg-type]
